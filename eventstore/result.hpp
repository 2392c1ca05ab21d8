#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cerebelum::eventstore {

/// What went wrong in a call to the event store.
enum class errc : std::uint8_t {
  /// The append's `expected_next_seq` is not the execution's next sequence
  /// number: another writer appended first. Reload the history and decide
  /// again.
  conflict = 1,
  /// A malformed request: empty execution id, negative sequence number, ...
  invalid_argument,
  /// An event payload exceeds the configured `max_payload_bytes`.
  payload_too_large,
  /// A stored event has a core type code (1..999) that the store's schema
  /// version does not define. A node that adds core types also raises the
  /// schema version (which older nodes refuse at open), so in a store whose
  /// version this node accepted, the event is damaged.
  unknown_event_type,
  /// A stored payload cannot be parsed as the message of its type code.
  corrupt_event,
  /// The database schema is newer than this node supports. Upgrade the node.
  schema_too_new,
  /// The database schema is older or foreign and cannot be used as is.
  schema_incompatible,
  /// The database cannot be reached (connection lost, server restarting).
  unavailable,
  /// Any other database failure.
  storage_error,
  /// The writer's queue is full; retry later (back-pressure).
  overloaded,
  /// The writer or store is shut down.
  closed,
  /// A failure injected by `faulty_store` (tests only).
  injected_fault,
  /// The store's file is damaged, missing, empty or not a database (SQLite:
  /// SQLITE_CORRUPT, SQLITE_NOTADB, a failed quick_check at open, a marker
  /// without its store). Retrying cannot help: restore from a backup.
  corrupt_store,
};

/// Returns the name of `code`, e.g. "conflict".
std::string_view to_string(errc code) noexcept;

/// An error of the event store. Modeled on Temporal's persistence errors: it
/// says whether retrying may help and, for writes, whether the write possibly
/// committed although it was not acknowledged.
struct error {
  errc code = errc::storage_error;
  std::string message;
  /// Retrying the same call later may succeed.
  bool retryable = false;
  /// For writes: the outcome is unknown, the data may be in the store. Never
  /// set for a write that certainly did not commit.
  bool possibly_committed = false;
};

/// Renders `err` as "code: message [retryable] [possibly committed]".
std::string to_string(const error& err);

/// Either a value of type `T` or an `error`. Must be checked.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : data_(std::in_place_index<0>, std::move(value)) {
    // nop
  }

  result(error err) : data_(std::in_place_index<1>, std::move(err)) {
    // nop
  }

  /// Returns whether this holds a value.
  bool ok() const noexcept {
    return data_.index() == 0;
  }

  explicit operator bool() const noexcept {
    return ok();
  }

  /// The value; requires `ok()`.
  T& value() & {
    return std::get<0>(data_);
  }

  const T& value() const& {
    return std::get<0>(data_);
  }

  T&& value() && {
    return std::get<0>(std::move(data_));
  }

  T& operator*() & {
    return value();
  }

  const T& operator*() const& {
    return value();
  }

  T* operator->() {
    return &value();
  }

  const T* operator->() const {
    return &value();
  }

  /// The error; requires `!ok()`.
  const error& err() const& {
    return std::get<1>(data_);
  }

  error&& err() && {
    return std::get<1>(std::move(data_));
  }

 private:
  std::variant<T, error> data_;
};

/// The value-less result of an operation that can fail.
struct done {};

/// Result of an operation that returns no value.
using status = result<done>;

/// A successful `status`.
inline status ok_status() {
  return status{done{}};
}

/// Shorthand for building an `error`.
inline error make_error(errc code, std::string message, bool retryable = false,
                        bool possibly_committed = false) {
  return error{code, std::move(message), retryable, possibly_committed};
}

} // namespace cerebelum::eventstore
