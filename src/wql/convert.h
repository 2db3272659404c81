// WMI's literal conversions (internal): a literal compared with a property is converted to the property's type
// before comparing, as WMI does (`State = '3'`, `IncludeSubCollection = 1`, `SourceDate > '20240101'`).
//
// The rules (docs/wql.md, "Conversions") by the property's category:
//   number    an integer or real literal as is; a string holding a decimal integer or real ('3', ' -2', '1.5e3')
//   string    a string as is; an integer literal as its decimal text (`Name = 5` is `Name = '5'`)
//   boolean   TRUE/FALSE; an integer (0 is FALSE, any other is TRUE); a string 'TRUE'/'FALSE' (any case) or a
//             decimal integer
//   datetime  a string in DMTF, ISO-8601 or one of SQL Server's forms (see parse_datetime_text)
// Anything else does not convert: convert_literal() answers WBEM_E_INVALID_QUERY naming the literal's position.
// A NULL literal is never passed here (comparisons with NULL fold to UNKNOWN first).
#pragma once

#include <optional>
#include <string_view>

#include "cim/datetime.h"
#include "cim/value.h"
#include "core/result.h"
#include "wql/ast.h"
#include "wql/bound.h"

namespace pkgcast::wql {

// The literal as a value comparable with `ref` in domain `domain` (of ref's type). Errors:
// WBEM_E_INVALID_QUERY "'abc' does not convert to uint32 'State' at L:C".
Result<cim::Value> convert_literal(const ast::Literal& lit, const PropertyRef& ref, Domain domain);

// A datetime from any accepted text form, or nullopt:
//   DMTF       "20240101103000.000000+000"
//   ISO-8601   "2024-01-01", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.5+02:00"
//   SQL Server "20240101", "20240101 10:00[:00[.fff]]", "2024-01-01 10:00[:00[.fff]]", "2024-01-01T10:00:00",
//              "2024/01/01", "2024.01.01"
//   WMI        "01/15/2024", "1-15-24", "01.15.2024" (month first, as SQL Server's default language reads it;
//              a two-digit year below 50 is 20yy), "1/2024/15", "January 15, 2024", "Jan 15 24", "15 Jan 2024",
//              "15Jan24", "2024 Jan 15", "15 2024 Jan", "Jan 2024"; each with an optional time "10:00[:00[.fff]]",
//              "10:00 AM", "10 PM"
// A form without a zone is UTC (pkgcast servers keep UTC; WMI would read the target computer's local time).
std::optional<cim::DateTime> parse_datetime_text(std::string_view text);

}  // namespace pkgcast::wql
