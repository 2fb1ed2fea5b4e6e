// URL parsing for the settings (database, bus, cache). Internal.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devcycle::internal {

struct HostPort {
  std::string host;
  std::optional<int> port;
};

// scheme://[user[:password]@]host[:port][,host[:port]...][/path][?k=v&k=v]
struct Url {
  std::string scheme;  // lowercased, without "://"
  std::string user;
  std::string password;
  std::vector<HostPort> hosts;
  std::string path;                                        // with its leading '/', percent-decoded
  std::vector<std::pair<std::string, std::string>> query;  // percent-decoded

  const std::string* query_value(std::string_view key) const;
};

// Throws Error{kInvalidArgument} "<label>: \"<text>\" is not a valid URL: <reason>".
// The password is masked in the message.
Url parse_url(std::string_view text, std::string_view label);

// Splits "a=1&b=2" into pairs, percent-decoding each part.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query,
                                                             std::string_view label,
                                                             std::string_view text);

// Throws Error{kInvalidArgument} "<label>: \"<text, password masked>\" <reason>".
[[noreturn]] void fail_setting(std::string_view label, std::string_view text,
                               std::string_view reason);

// For URLs that are only a scheme (memory://, inproc://): throws via
// fail_setting when `url` has a host, path or parameters.
void require_bare(const Url& url, std::string_view text, std::string_view label);

// The URL with any password replaced by "***", for logs and errors.
std::string redact_url(std::string_view text);

}  // namespace devcycle::internal
