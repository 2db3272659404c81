// Limits of the WQL engine. Each bounds the work or the stack a single query can cost; exceeding one is an error
// (never a crash): WBEM_E_QUOTA_VIOLATION.
#pragma once

#include <cstddef>

namespace pkgcast::wql {

// Longest query text accepted, in bytes.
inline constexpr std::size_t kMaxQueryBytes = 32 * 1024;
// Deepest nesting of parentheses and NOTs in a condition. Parser, printer, binder and evaluator recurse at most
// this deep, so the stack they use is bounded.
inline constexpr std::size_t kMaxNestingDepth = 256;
// Most predicates (comparisons, LIKE, IS NULL, ISA) in one query, WHERE and HAVING together.
inline constexpr std::size_t kMaxTerms = 1024;
// Most properties in a SELECT list or a GROUP BY list.
inline constexpr std::size_t kMaxSelectedProperties = 256;
// Most ORDER BY terms. Each page of a sorted answer is one database statement whose sort and "after the last row"
// condition grow with the terms (measured: 128 terms cost 0.7 s over 3,000 rows, 256 terms a minute).
inline constexpr std::size_t kMaxOrderByTerms = 16;
// Most IN (SELECT ...) subqueries in one query: each is a query of its own, answered before the first row.
inline constexpr std::size_t kMaxSubqueries = 16;
// Most classes in one FROM clause (the first and those it joins).
inline constexpr std::size_t kMaxJoinedClasses = 8;
// Longest identifier (class or property name), in bytes.
inline constexpr std::size_t kMaxIdentifierBytes = 256;
// Longest LIKE pattern, in bytes. A LIKE test costs the text's length times a word per 64 of the pattern's
// positions (like.h), and an event query's WHERE runs on the event engine's one thread for every change of its
// class.
inline constexpr std::size_t kMaxLikePatternBytes = 512;

}  // namespace pkgcast::wql
