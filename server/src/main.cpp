// The `devcycle` executable: `devcycle serve` and, as they land, the CLI's
// subcommands.
#include <iostream>
#include <string>

#include "devcycle/version.h"
#include "serve.h"

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "serve") return devcycle::server::serve_main(argc - 1, argv + 1);
  if (command == "version" || command == "--version") {
    std::cout << "devcycle " << DEVCYCLE_VERSION_STRING << "\n";
    return 0;
  }
  const bool help = command == "help" || command == "--help" || command == "-h";
  (help ? std::cout : std::cerr) << "Usage: devcycle <command>\n\n"
                                    "Commands:\n"
                                    "  serve     run the DevCycle server (devcycle serve --help)\n"
                                    "  version   print the version\n";
  return help ? 0 : 64;
}
