#include "problem.h"

#include <nlohmann/json.hpp>

namespace devcycle::server {

namespace {

std::string_view title_of(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

std::string_view code_of_status(int status) {
  switch (status) {
    case 400:
      return "invalid_argument";
    case 413:
      return "body_too_large";
    case 431:
      return "headers_too_large";
    case 503:
      return "unavailable";
    default:
      return "internal";
  }
}

// "name: must match ..." -> {"name", "must match ..."}, when the part before
// ": " looks like a field path (no spaces).
std::vector<FieldProblem> split_fields(const std::string& message) {
  const auto colon = message.find(": ");
  if (colon == std::string::npos || colon == 0 || colon > 128) return {};
  const std::string field = message.substr(0, colon);
  if (field.find_first_of(" \"'") != std::string::npos) return {};
  return {{field, message.substr(colon + 2)}};
}

}  // namespace

ValidationError::ValidationError(std::vector<FieldProblem> problems)
    : std::runtime_error(problems.empty()
                             ? std::string("invalid input")
                             : problems.front().field + ": " + problems.front().reason),
      problems_(std::move(problems)) {}

int http_status(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kResourceExhausted:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

HttpResponse problem(int status, std::string_view code, std::string detail,
                     const std::vector<FieldProblem>& errors) {
  nlohmann::json body{{"type", "urn:devcycle:problem:" + std::string(code)},
                      {"title", title_of(status)},
                      {"status", status},
                      {"code", code},
                      {"detail", std::move(detail)}};
  if (!errors.empty()) {
    auto& list = body["errors"] = nlohmann::json::array();
    for (const auto& e : errors) list.push_back({{"field", e.field}, {"reason", e.reason}});
  }
  HttpResponse r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"devcycle\"");
  return r;
}

HttpResponse problem(const Error& e) {
  const int status = http_status(e.code());
  if (e.code() == ErrorCode::kInternal) {
    return problem(status, to_string(e.code()), "internal error");
  }
  auto r = problem(status, to_string(e.code()), e.what(),
                   e.code() == ErrorCode::kInvalidArgument ? split_fields(e.what())
                                                           : std::vector<FieldProblem>{});
  if (e.code() == ErrorCode::kResourceExhausted || e.code() == ErrorCode::kUnavailable) {
    r.headers.emplace_back("Retry-After", "1");
  }
  return r;
}

HttpResponse problem(const ValidationError& e) {
  std::string detail;
  for (const auto& p : e.problems()) {
    if (!detail.empty()) detail += "; ";
    detail += p.field + ": " + p.reason;
  }
  return problem(400, "invalid_argument", detail, e.problems());
}

HttpResponse transport_problem(int status, std::string detail) {
  return problem(status, code_of_status(status), std::move(detail));
}

}  // namespace devcycle::server
