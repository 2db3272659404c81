// Result<T>: the value or the error, returned across every module boundary. No exception crosses a layer.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/wbem.h"

namespace pkgcast {

// An error says what went wrong (a WBEM code) and where, in one human sentence.
struct Error {
  WbemCode code = WbemCode::kFailed;
  std::string message;

  // "WBEM_E_INVALID_QUERY: expected FROM at 1:10".
  std::string to_string() const;
  friend bool operator==(const Error&, const Error&) = default;
};

inline Error make_error(WbemCode code, std::string message) { return Error{code, std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Precondition: ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // Precondition: !ok().
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return Status(); }

}  // namespace pkgcast

#define PKG_CONCAT_INNER_(a, b) a##b
#define PKG_CONCAT_(a, b) PKG_CONCAT_INNER_(a, b)

// Returns the error of a failed Result/Status from the enclosing function.
#define PKG_TRY(expr)                                    \
  do {                                                   \
    auto&& pkg_try_result_ = (expr);                     \
    if (!pkg_try_result_.ok()) {                         \
      return std::move(pkg_try_result_).error();         \
    }                                                    \
  } while (false)

// PKG_ASSIGN_OR_RETURN(auto x, f()); declares/assigns x from a Result or returns its error.
#define PKG_ASSIGN_OR_RETURN(lhs, expr) PKG_ASSIGN_OR_RETURN_IMPL_(PKG_CONCAT_(pkg_aor_, __LINE__), lhs, expr)
#define PKG_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).error();    \
  lhs = std::move(tmp).value()
