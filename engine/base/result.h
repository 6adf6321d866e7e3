// sigil::Result and sigil::Error: the error type of every fallible call.
//
// Guarantees: no exceptions on request paths. An Error carries a category that maps 1:1 onto an HTTP
// status and the API's error body (API.md 0.4), a short message that is safe to show a client, and an
// optional machine code (`ts_error_code`, API.md 6). Messages never contain secrets.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <expected>
#include <string>
#include <utility>

namespace sigil {

enum class ErrorCode : uint8_t {
  kInvalidArgument,    // 400
  kUnauthenticated,    // 401
  kPermissionDenied,   // 403
  kNotFound,           // 404
  kConflict,           // 409
  kPayloadTooLarge,    // 413
  kRateLimited,        // 429
  kInternal,           // 500
  kUnavailable,        // 503: capacity exhausted, storage failing
};

[[nodiscard]] constexpr int http_status(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kPayloadTooLarge: return 413;
    case ErrorCode::kRateLimited: return 429;
    case ErrorCode::kInternal: return 500;
    case ErrorCode::kUnavailable: return 503;
  }
  return 500;
}

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;        // safe to show a client
  std::string ts_error_code;  // API.md section 6; empty when none applies
  // Endpoints whose reference documents a string `error_code` ("invalid_request",
  // "user_unknown_identifier_type") set it here; empty means the numeric HTTP status.
  std::string string_error_code;

  [[nodiscard]] int status() const noexcept { return http_status(code); }
};

template <typename T>
using Result = std::expected<T, Error>;

[[nodiscard]] inline std::unexpected<Error> make_error(ErrorCode code, std::string message,
                                                       std::string ts_error_code = {}) {
  return std::unexpected<Error>(Error{code, std::move(message), std::move(ts_error_code), {}});
}
[[nodiscard]] inline std::unexpected<Error> invalid_argument(std::string message,
                                                             std::string ts = "system_invalid_input") {
  return make_error(ErrorCode::kInvalidArgument, std::move(message), std::move(ts));
}
[[nodiscard]] inline std::unexpected<Error> internal_error(std::string message = "Internal error") {
  return make_error(ErrorCode::kInternal, std::move(message));
}

}  // namespace sigil

#define SIGIL_CONCAT_INNER(a, b) a##b
#define SIGIL_CONCAT(a, b) SIGIL_CONCAT_INNER(a, b)

// SIGIL_TRY(expr): evaluates a Result<void> (or any Result) and returns its error from the caller.
#define SIGIL_TRY(expr)                                                   \
  do {                                                                    \
    auto&& sigil_try_result_ = (expr);                                    \
    if (!sigil_try_result_) return std::unexpected(sigil_try_result_.error()); \
  } while (0)

// SIGIL_ASSIGN_OR_RETURN(lhs, expr): `lhs = *expr` or return expr's error.
#define SIGIL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)       \
  auto tmp = (expr);                                      \
  if (!tmp) return std::unexpected(std::move(tmp).error()); \
  lhs = std::move(*tmp)
#define SIGIL_ASSIGN_OR_RETURN(lhs, expr) \
  SIGIL_ASSIGN_OR_RETURN_IMPL(SIGIL_CONCAT(sigil_aor_, __LINE__), lhs, expr)

// "Cannot happen": aborts with a message in every build. Untrusted input never reaches one.
#define SIGIL_CHECK(cond)                                                          \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "SIGIL_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                \
    }                                                                              \
  } while (0)
