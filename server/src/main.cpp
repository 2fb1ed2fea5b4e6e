// The `devcycle` executable: `devcycle serve` (the server) and the CLI's
// other commands (cli/, docs/cli.md).
#include <iostream>
#include <string>

#include "cli.h"
#include "devcycle/version.h"
#include "serve.h"

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "serve") return devcycle::server::serve_main(argc - 1, argv + 1);
  if (command == "version" || command == "--version") {
    std::cout << "devcycle " << DEVCYCLE_VERSION_STRING << "\n";
    return 0;
  }
  return devcycle::cli::cli_main(argc, argv);
}
