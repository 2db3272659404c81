// The two backends' connection factories. Internal to src/store.
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "store/sql.h"

namespace pkgcast::store {

// Opens (creating if needed) an SQLite database file in multi-thread mode (one connection per thread), WAL
// journal, synchronous=FULL, a busy timeout. Every connection of one store opens the same file.
Result<std::unique_ptr<Connection>> open_sqlite_connection(const std::string& path);

// Connects to PostgreSQL with a libpq URL ("postgresql://user@host:port/db"), client encoding UTF8.
Result<std::unique_ptr<Connection>> open_pg_connection(const std::string& url);

const Dialect& sqlite_dialect();
const Dialect& pg_dialect();

}  // namespace pkgcast::store
