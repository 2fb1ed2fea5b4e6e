// A small blocking HTTP/1.1 client for the CLI: one keep-alive connection to
// the server (http:// or https://, certificates checked against the system's
// roots), reopened when the server closed it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devcycle::cli {

struct ClientResponse {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string header(std::string_view name) const;  // case-insensitive; "" when absent
  std::vector<std::pair<std::string, std::string>> headers;
};

class HttpClient {
 public:
  // `base_url`: http(s)://host[:port]. Throws CliError (usage) for anything else.
  explicit HttpClient(const std::string& base_url,
                      std::chrono::seconds timeout = std::chrono::seconds(30));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Throws CliError (unavailable) when the server cannot be reached.
  ClientResponse request(std::string_view method, std::string_view target,
                         const std::string& body = {},
                         const std::vector<std::pair<std::string, std::string>>& headers = {});
  const std::string& base_url() const noexcept { return base_url_; }

 private:
  struct Impl;
  std::string base_url_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devcycle::cli
