// Human output: aligned tables, and one "Name : value" block per instance when a table would be too wide.
#pragma once

#include <string>
#include <vector>

#include "cim/json.h"

namespace pkgcast::cli {

// The text a JSON value shows in a cell: strings bare, null empty, arrays comma-separated.
std::string cell_text(const cim::Json& v);

// Prints rows of JSON objects. `columns` chooses and orders the columns; empty = every member of the first row
// except system properties ("__CLASS", ...). Wider than the terminal (COLUMNS, default 120): one block per row.
void print_table(const std::vector<cim::Json>& rows, std::vector<std::string> columns = {});

// Prints one object as "Name : value" lines.
void print_record(const cim::Json& row);

}  // namespace pkgcast::cli
