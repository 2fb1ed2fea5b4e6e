// `devcycle <noun> <verb>`: the command-line client of a DevCycle server
// (docs/cli.md). Internal to the devcycle executable.
#pragma once

#include <stdexcept>
#include <string>

namespace devcycle::cli {

// Exit codes, sysexits-style (docs/cli.md has the table).
enum Exit : int {
  kOk = 0,
  kRunFailed = 1,     // runs watch / start --watch: the run did not succeed
  kUsage = 64,        // a bad command line
  kDataErr = 65,      // the server refused the input (400, 409, 413)
  kNotFound = 66,     // no such object (404), or an input file that is not there
  kUnavailable = 69,  // the server cannot be reached, or is not ready (503)
  kSoftware = 70,     // the server failed (5xx)
  kTempFail = 75,     // rate limited (429): try again later
  kNoPerm = 77,       // not logged in (401) or not allowed (403)
  kConfig = 78,       // the stored credentials cannot be read
};

struct CliError : std::runtime_error {
  CliError(int exit_code, const std::string& message)
      : std::runtime_error(message), code(exit_code) {}
  int code;
};

// argv[0] is "devcycle"; argv[1] the noun.
int cli_main(int argc, char** argv);

}  // namespace devcycle::cli
