# Finds every third-party dependency and fails with a message that says which
# Debian package provides a missing one (scripts/setup-debian.sh installs all).

find_package(Threads REQUIRED)

macro(devcycle_require_config pkg debian)
  find_package(${pkg} ${ARGN} CONFIG QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR "DevCycle needs ${pkg} ${ARGN}: install the Debian package ${debian} "
                        "(bash scripts/setup-debian.sh installs everything)")
  endif()
endmacro()

find_package(SQLite3 QUIET)
if(NOT SQLite3_FOUND)
  message(FATAL_ERROR "DevCycle needs SQLite 3: install the Debian package libsqlite3-dev")
endif()
devcycle_require_config(nlohmann_json nlohmann-json3-dev)
devcycle_require_config(tomlplusplus libtomlplusplus-dev)

# Boost 1.74 (Debian's default) does not compile Asio as C++20 with g++ 12; the
# server needs 1.81, so refuse anything older now rather than at the server.
find_package(Boost 1.81 CONFIG QUIET)
if(NOT Boost_FOUND)
  message(FATAL_ERROR "DevCycle needs Boost 1.81 or newer: install the Debian package "
                      "libboost1.81-dev (not libboost-dev, which is 1.74 and conflicts)")
endif()

# libcrypto for SHA-256 with the CPU's SHA extensions (HS256 verification).
find_package(OpenSSL 3 QUIET COMPONENTS Crypto SSL)
if(NOT OpenSSL_FOUND)
  message(FATAL_ERROR "DevCycle needs OpenSSL 3 (libcrypto): install the Debian package libssl-dev")
endif()

find_package(PkgConfig REQUIRED)
pkg_check_modules(libsodium_PC QUIET IMPORTED_TARGET libsodium)
if(NOT libsodium_PC_FOUND)
  message(FATAL_ERROR "DevCycle needs libsodium (argon2id, secretbox, Ed25519): install the Debian package libsodium-dev")
endif()
# RE2 for the patterns of JSON Schemas: matching in linear time, whatever
# pattern and value a caller sends (std::regex backtracks exponentially).
pkg_check_modules(re2_PC QUIET IMPORTED_TARGET re2)
if(NOT re2_PC_FOUND)
  message(FATAL_ERROR "DevCycle needs RE2 (schema patterns in linear time): install the Debian package libre2-dev")
endif()
macro(devcycle_require_pkgconfig option module debian)
  if(${option})
    pkg_check_modules(${module}_PC QUIET IMPORTED_TARGET ${module})
    if(NOT ${module}_PC_FOUND)
      message(FATAL_ERROR "${option}=ON needs ${module}: install the Debian package ${debian}, "
                          "or configure with -D${option}=OFF")
    endif()
  endif()
endmacro()
devcycle_require_pkgconfig(DEVCYCLE_WITH_POSTGRES libpqxx libpqxx-dev)
devcycle_require_pkgconfig(DEVCYCLE_WITH_POSTGRES libpq libpq-dev)
devcycle_require_pkgconfig(DEVCYCLE_WITH_KAFKA rdkafka librdkafka-dev)
devcycle_require_pkgconfig(DEVCYCLE_WITH_REDIS hiredis libhiredis-dev)

if(DEVCYCLE_BUILD_TESTS)
  find_package(GTest CONFIG QUIET)
  if(NOT GTest_FOUND)
    message(FATAL_ERROR "DEVCYCLE_BUILD_TESTS=ON needs GoogleTest: install libgtest-dev and libgmock-dev")
  endif()
endif()
if(DEVCYCLE_BUILD_BENCH)
  find_package(benchmark CONFIG QUIET)
  if(NOT benchmark_FOUND)
    message(FATAL_ERROR "DEVCYCLE_BUILD_BENCH=ON needs Google Benchmark: install libbenchmark-dev")
  endif()
endif()
