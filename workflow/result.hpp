#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace cerebelum::workflow {

/// A problem found while loading, validating or evaluating a workflow.
/// Every field but `message` is optional (empty or 0 when unknown).
struct diagnostic {
  /// File the definition came from.
  std::string file;
  /// 1-based line in that file (YAML/JSON source), 0 when unknown.
  int line = 0;
  /// 1-based column: of the YAML node, or inside an expression.
  int column = 0;
  /// Name of the step (or stage) concerned.
  std::string step;
  /// What is wrong, in plain words.
  std::string message;

  /// Renders `file:line:column: step 'x': message`, omitting unknown parts.
  [[nodiscard]] std::string to_string() const;
};

/// Either a value or a diagnostic; an `expected`-style result that never
/// throws for bad input.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : value_(std::move(value)) {}

  result(diagnostic error) : value_(std::move(error)) {}

  /// Converts anything `T` can be built from (e.g. a number into JSON).
  template <class U>
  requires(
    std::is_constructible_v<
      T,
      U&&> && !std::is_same_v<std::remove_cvref_t<U>, T> && !std::is_same_v<std::remove_cvref_t<U>, diagnostic>)
    result(U&& value)
    : value_(std::in_place_index<0>, std::forward<U>(value)) {}

  [[nodiscard]] bool ok() const noexcept {
    return value_.index() == 0;
  }

  explicit operator bool() const noexcept {
    return ok();
  }

  [[nodiscard]] T& value() & {
    return std::get<0>(value_);
  }

  [[nodiscard]] const T& value() const& {
    return std::get<0>(value_);
  }

  [[nodiscard]] T&& value() && {
    return std::get<0>(std::move(value_));
  }

  [[nodiscard]] const diagnostic& error() const {
    return std::get<1>(value_);
  }

  T* operator->() {
    return &value();
  }

  const T* operator->() const {
    return &value();
  }

  T& operator*() & {
    return value();
  }

  const T& operator*() const& {
    return value();
  }

 private:
  std::variant<T, diagnostic> value_;
};

/// Result of an operation without a value.
struct ok_t {};

/// Shorthand for a result that carries nothing on success.
using status = result<ok_t>;

} // namespace cerebelum::workflow
