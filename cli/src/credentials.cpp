#include "credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"

namespace devcycle::cli {

namespace {

std::string config_dir() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/devcycle";
  const char* home = std::getenv("HOME");
  if (!home || !*home)
    throw CliError(kConfig, "credentials: neither XDG_CONFIG_HOME nor HOME is set");
  return std::string(home) + "/.config/devcycle";
}

void make_dirs(const std::string& dir) {
  // Each missing level with 0700: tokens are nobody else's business.
  for (std::size_t at = 1; at != std::string::npos;) {
    at = dir.find('/', at + 1);
    const auto part = dir.substr(0, at);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      throw CliError(kConfig, "credentials: cannot create " + part + ": " + std::strerror(errno));
  }
}

}  // namespace

std::string credentials_path() { return config_dir() + "/credentials.json"; }

std::optional<Credentials> load_credentials() {
  const auto path = credentials_path();
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw CliError(kConfig, "credentials: " + path + " is not JSON; log in again (devcycle login)");
  Credentials c;
  c.server = j.value("server", "");
  c.username = j.value("username", "");
  c.access_token = j.value("access_token", "");
  c.refresh_token = j.value("refresh_token", "");
  return c;
}

void save_credentials(const Credentials& c) {
  const auto dir = config_dir();
  make_dirs(dir);
  const auto path = dir + "/credentials.json";
  const auto tmp = path + ".tmp";
  const nlohmann::json j = {{"server", c.server},
                            {"username", c.username},
                            {"access_token", c.access_token},
                            {"refresh_token", c.refresh_token}};
  const auto text = j.dump(2) + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    throw CliError(kConfig, "credentials: cannot write " + tmp + ": " + std::strerror(errno));
  const bool ok = ::fchmod(fd, 0600) == 0 &&
                  ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw CliError(kConfig, "credentials: cannot write " + path + ": " + std::strerror(errno));
  }
}

void forget_credentials() { ::unlink(credentials_path().c_str()); }

}  // namespace devcycle::cli
