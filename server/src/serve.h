// `devcycle serve`: settings, first start, the server's lifetime.
#pragma once

namespace devcycle::server {

// Runs the server until SIGTERM or SIGINT. argv[0] is "serve". Returns the
// process exit code (sysexits: 64 bad usage, 78 bad configuration, 69 a
// service is unavailable).
int serve_main(int argc, const char* const* argv);

}  // namespace devcycle::server
