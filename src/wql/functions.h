// Extended WQL's functions (internal): UPPER, LOWER, SUBSTRING, DATEPART, DATEDIFF, DATEADD, GETDATE.
//
// Configuration Manager's provider hands them to SQL Server, so they behave as SQL Server's do (docs/wql.md
// "Functions" lists every rule), within WQL's values: strings are UTF-8 and counted in code points, datetimes are
// UTC instants with microsecond precision between the years 1601 and 9999 (a DATEADD that leaves that range gives
// NULL where SQL Server raises an overflow), weeks start on Sunday (SQL Server's default DATEFIRST 7). Every
// function gives NULL for a NULL argument.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "cim/datetime.h"
#include "cim/value.h"
#include "wql/ast.h"

namespace pkgcast::wql {

// SQL Server's dateparts, with their names and abbreviations (yy/yyyy/year, mm/m/month, dd/d/day, ...).
enum class DatePart : std::uint8_t {
  kYear,
  kQuarter,
  kMonth,
  kDayOfYear,
  kDay,
  kWeek,
  kWeekday,
  kHour,
  kMinute,
  kSecond,
  kMillisecond,
  kMicrosecond,
};

// Case-insensitive: "yy", "YYYY", "year" -> kYear. nullopt for anything else.
std::optional<DatePart> find_datepart(std::string_view name);
// A function name, case-insensitive; nullopt when unknown.
std::optional<ast::Function> find_function(std::string_view name);
// How many operands the function takes (the datepart not counted).
std::size_t function_arity(ast::Function f);
bool takes_datepart(ast::Function f);

// The functions over values. NULL in, NULL out; arguments are of the types the binder checked.
cim::Value fn_upper(const cim::Value& s);
cim::Value fn_lower(const cim::Value& s);
// SUBSTRING(s, start, length): code points start..start+length-1 (1-based), clipped to the string; a negative
// length gives NULL (SQL Server raises an error).
cim::Value fn_substring(const cim::Value& s, const cim::Value& start, const cim::Value& length);
cim::Value fn_datepart(DatePart part, const cim::Value& date);
// The number of `part` boundaries crossed from `start` to `end` (negative when end is earlier).
cim::Value fn_datediff(DatePart part, const cim::Value& start, const cim::Value& end);
cim::Value fn_dateadd(DatePart part, const cim::Value& number, const cim::Value& date);
// Any function but GETDATE (which the binder folds) over its evaluated arguments.
cim::Value apply_function(ast::Function f, DatePart part, const std::vector<cim::Value>& args);

}  // namespace pkgcast::wql
