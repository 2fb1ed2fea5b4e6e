// RFC 9457 problem details: every error the server answers with.
//
// Bad input is reported field by field: a ValidationError carries every
// problem found in one request, and a library Error "<field>: <reason>" is
// split the same way, so that clients can put each message next to its
// input.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "devcycle/common/error.h"
#include "http_server.h"

namespace devcycle::server {

struct FieldProblem {
  std::string field;  // "name", "labels.env", "query.limit", "header.Idempotency-Key"
  std::string reason;
};

// Bad input found by the server itself, all problems at once (400).
class ValidationError : public std::runtime_error {
 public:
  explicit ValidationError(std::vector<FieldProblem> problems);
  ValidationError(std::string field, std::string reason)
      : ValidationError(std::vector<FieldProblem>{{std::move(field), std::move(reason)}}) {}
  const std::vector<FieldProblem>& problems() const noexcept { return problems_; }

 private:
  std::vector<FieldProblem> problems_;
};

// The HTTP status of an error code.
int http_status(ErrorCode code) noexcept;

// A problem+json response. `code` is the stable error name
// ("invalid_argument"); `errors` may be empty.
HttpResponse problem(int status, std::string_view code, std::string detail,
                     const std::vector<FieldProblem>& errors = {});
HttpResponse problem(const Error& e);
HttpResponse problem(const ValidationError& e);
// The transport's own refusals (413, 431, 400, 503, 500).
HttpResponse transport_problem(int status, std::string detail);

}  // namespace devcycle::server
