// What every command shares: the resolved server, the caller's token, and
// calls to the API that turn problem+json answers into CliErrors.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "credentials.h"
#include "http_client.h"
#include "output.h"

namespace devcycle::cli {

struct Options {
  std::string server;  // --server; else DEVCYCLE_SERVER, the login's server, 127.0.0.1:8080
  std::string output = "table";
  Format format() const { return output == "json" ? Format::kJson : Format::kTable; }
};

class Session {
 public:
  explicit Session(const Options& options, bool need_login = true);
  // The parsed answer of a 2xx; CliError naming the server's reason otherwise.
  // A 401 with a stored refresh token refreshes once and tries again.
  Json call(std::string_view method, const std::string& target, const Json* body = nullptr,
            const std::vector<std::pair<std::string, std::string>>& headers = {});
  const std::string& server() const { return server_; }
  HttpClient& client() { return client_; }

 private:
  ClientResponse send(std::string_view method, const std::string& target, const std::string& body,
                      std::vector<std::pair<std::string, std::string>> headers);
  bool refresh();

  std::string server_;
  HttpClient client_;
  std::optional<Credentials> stored_;  // when the token came from devcycle login
  std::string token_;
};

std::string resolve_server(const Options& options);
// "?a=1&b=x%20y" from the pairs whose value is not empty ("" when none).
std::string query(const std::vector<std::pair<std::string, std::string>>& params);
std::string url_escape(std::string_view s);
// The exit code for an HTTP status, and the message from a problem+json body.
[[noreturn]] void fail_with(const ClientResponse& r);
void print_json(const Json& j);

// Command groups, each in its own file.
void add_run_commands(CLI::App& app, Options& options);
void add_admin_commands(CLI::App& app, Options& options);  // logs, keys, users, secrets, ...

}  // namespace devcycle::cli
