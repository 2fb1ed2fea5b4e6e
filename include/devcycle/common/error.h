// The one error model of DevCycle.
//
// Every failure that crosses a public API is a devcycle::Error: an ErrorCode
// that says what kind of failure it is, and a message that names the field,
// setting or object involved. Backends catch the errors of the libraries they
// use (sqlite3, libpqxx, librdkafka, hiredis, the OS) and rethrow them as
// Error in one place each, so nothing foreign escapes. The edges translate
// once: HTTP problem+json status, Python and Java exception classes.
//
// Thread-safety: Error is an immutable value.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace devcycle {

enum class ErrorCode {
  kInvalidArgument,    // the caller's input is wrong; the message names the field
  kNotFound,           // the object does not exist, or the caller may not read it
  kAlreadyExists,      // a unique name or id is taken
  kConflict,           // a concurrent change won (lost lease, stale version)
  kUnauthenticated,    // no valid credentials
  kPermissionDenied,   // valid credentials, but not allowed to change this
  kResourceExhausted,  // a rate limit, quota or capacity is used up
  kUnavailable,        // a backend cannot be reached or is closed; try again
  kDeadlineExceeded,   // the operation ran out of time
  kInternal,           // a bug or a broken invariant; never the caller's fault
};

// Stable lower_snake_case name ("invalid_argument"), used in logs and on the wire.
std::string_view to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

  ErrorCode code() const noexcept { return code_; }

  // True when the same call may succeed if repeated later, unchanged:
  // kUnavailable, kDeadlineExceeded, kResourceExhausted and kConflict.
  bool retryable() const noexcept;

 private:
  ErrorCode code_;
};

}  // namespace devcycle
