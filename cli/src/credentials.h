// Where `devcycle login` keeps its tokens: $XDG_CONFIG_HOME/devcycle/
// credentials.json (else ~/.config/devcycle/), mode 0600 in a 0700 folder.
#pragma once

#include <optional>
#include <string>

namespace devcycle::cli {

struct Credentials {
  std::string server;
  std::string username;
  std::string access_token;
  std::string refresh_token;
};

std::string credentials_path();
// Nothing when no one logged in; CliError(kConfig) when the file is unreadable.
std::optional<Credentials> load_credentials();
// Written whole (a temporary file renamed over the old one), never readable by others.
void save_credentials(const Credentials& c);
void forget_credentials();

}  // namespace devcycle::cli
