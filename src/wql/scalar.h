// Scalar views and comparisons (internal), shared by the evaluator and by the binder's constant folding.
//
// A Scalar is a non-owning view of one value, made without allocating: strings stay in the instance (or in a
// scratch buffer the caller owns). Everything here is inline because it sits on the evaluator's hot path.
#pragma once

#include <cstdint>
#include <string_view>

#include "cim/value.h"
#include "core/strings.h"
#include "wql/ast.h"
#include "wql/bound.h"

namespace pkgcast::wql {

struct Scalar {
  enum class Kind : std::uint8_t { kNull, kBool, kSint, kUint, kReal, kString, kDateTime, kOther };
  Kind kind = Kind::kNull;
  bool b = false;
  std::int64_t i = 0;  // kSint; kDateTime as Unix microseconds
  std::uint64_t u = 0;
  double d = 0;
  std::string_view s;

  static Scalar null() { return Scalar{}; }
  static Scalar string(std::string_view v) {
    Scalar r;
    r.kind = Kind::kString;
    r.s = v;
    return r;
  }
  static Scalar sint(std::int64_t v) {
    Scalar r;
    r.kind = Kind::kSint;
    r.i = v;
    return r;
  }
  static Scalar uint(std::uint64_t v) {
    Scalar r;
    r.kind = Kind::kUint;
    r.u = v;
    return r;
  }
};

// Arrays and embedded objects view as kOther: nothing compares them.
inline Scalar scalar_of(const cim::Value& v) {
  Scalar r;
  if (v.is_null()) return r;
  if (v.type().array) {
    r.kind = Scalar::Kind::kOther;
    return r;
  }
  switch (v.type().base) {
    case cim::CimType::kBoolean:
      r.kind = Scalar::Kind::kBool;
      r.b = v.as_bool();
      break;
    case cim::CimType::kSint8:
    case cim::CimType::kSint16:
    case cim::CimType::kSint32:
    case cim::CimType::kSint64:
      r.kind = Scalar::Kind::kSint;
      r.i = v.as_sint();
      break;
    case cim::CimType::kUint8:
    case cim::CimType::kUint16:
    case cim::CimType::kUint32:
    case cim::CimType::kUint64:
      r.kind = Scalar::Kind::kUint;
      r.u = v.as_uint();
      break;
    case cim::CimType::kReal32:
    case cim::CimType::kReal64:
      r.kind = Scalar::Kind::kReal;
      r.d = v.as_real();
      break;
    case cim::CimType::kString:
    case cim::CimType::kReference:
      r.kind = Scalar::Kind::kString;
      r.s = v.as_string();
      break;
    case cim::CimType::kDateTime:
      r.kind = Scalar::Kind::kDateTime;
      r.i = v.as_datetime().unix_micros();
      break;
    case cim::CimType::kObject: r.kind = Scalar::Kind::kOther; break;
  }
  return r;
}

inline Truth truth(bool b) { return b ? Truth::kTrue : Truth::kFalse; }

inline Truth apply_order(ast::CompareOp op, int c) {
  switch (op) {
    case ast::CompareOp::kEq: return truth(c == 0);
    case ast::CompareOp::kNe: return truth(c != 0);
    case ast::CompareOp::kLt: return truth(c < 0);
    case ast::CompareOp::kGt: return truth(c > 0);
    case ast::CompareOp::kLe: return truth(c <= 0);
    case ast::CompareOp::kGe: return truth(c >= 0);
  }
  return Truth::kUnknown;
}

template <typename T>
int three_way(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Numeric three-way comparison by value; false when the values are unordered (a NaN) or not numbers.
// Integers of any signedness compare exactly; with a real involved both sides go through long double, which holds
// every 64-bit integer exactly on x86-64 (and is double elsewhere: documented in docs/wql.md).
inline bool compare_numbers(const Scalar& a, const Scalar& b, int* c) {
  using K = Scalar::Kind;
  if (a.kind == K::kUint && b.kind == K::kUint) {
    *c = three_way(a.u, b.u);
    return true;
  }
  if (a.kind == K::kSint && b.kind == K::kSint) {
    *c = three_way(a.i, b.i);
    return true;
  }
  if (a.kind == K::kSint && b.kind == K::kUint) {
    *c = a.i < 0 ? -1 : three_way(static_cast<std::uint64_t>(a.i), b.u);
    return true;
  }
  if (a.kind == K::kUint && b.kind == K::kSint) {
    *c = b.i < 0 ? 1 : three_way(a.u, static_cast<std::uint64_t>(b.i));
    return true;
  }
  auto as_long_double = [](const Scalar& s, long double* out) {
    switch (s.kind) {
      case K::kSint: *out = static_cast<long double>(s.i); return true;
      case K::kUint: *out = static_cast<long double>(s.u); return true;
      case K::kReal: *out = s.d; return s.d == s.d;  // NaN is unordered
      default: return false;
    }
  };
  long double x = 0;
  long double y = 0;
  if (!as_long_double(a, &x) || !as_long_double(b, &y)) return false;
  *c = three_way(x, y);
  return true;
}

// lhs op rhs in the given domain; kUnknown when either side is NULL or not of the domain.
inline Truth compare_scalars(Domain domain, ast::CompareOp op, const Scalar& a, const Scalar& b) {
  using K = Scalar::Kind;
  if (a.kind == K::kNull || b.kind == K::kNull) return Truth::kUnknown;
  switch (domain) {
    case Domain::kString:
      if (a.kind != K::kString || b.kind != K::kString) return Truth::kUnknown;
      if (op == ast::CompareOp::kEq) return truth(iequals(a.s, b.s));
      if (op == ast::CompareOp::kNe) return truth(!iequals(a.s, b.s));
      return apply_order(op, icompare(a.s, b.s));
    case Domain::kNumber: {
      int c = 0;
      if (!compare_numbers(a, b, &c)) return Truth::kUnknown;
      return apply_order(op, c);
    }
    case Domain::kDateTime:
      if (a.kind != K::kDateTime || b.kind != K::kDateTime) return Truth::kUnknown;
      return apply_order(op, three_way(a.i, b.i));
    case Domain::kBoolean:
      if (a.kind != K::kBool || b.kind != K::kBool) return Truth::kUnknown;
      if (op == ast::CompareOp::kEq) return truth(a.b == b.b);
      if (op == ast::CompareOp::kNe) return truth(a.b != b.b);
      return Truth::kUnknown;
  }
  return Truth::kUnknown;
}

// A total order within a domain that agrees with compare_scalars' `=` (strings by case-folded bytes, numbers by
// value, datetimes by instant, FALSE before TRUE), for sorted value sets (IN (SELECT ...)). Both sides non-NULL.
inline int order_scalars(Domain domain, const Scalar& a, const Scalar& b) {
  switch (domain) {
    case Domain::kString: return icompare(a.s, b.s);
    case Domain::kNumber: {
      int c = 0;
      return compare_numbers(a, b, &c) ? c : 0;
    }
    case Domain::kDateTime: return three_way(a.i, b.i);
    case Domain::kBoolean: return three_way(a.b, b.b);
  }
  return 0;
}

}  // namespace pkgcast::wql
