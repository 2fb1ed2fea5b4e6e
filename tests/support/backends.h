// The Database backends every conformance suite runs on. PostgreSQL joins
// with the scale-out issue, here, once for all suites.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace devcycle::testing {

struct Backend {
  std::string name;
  std::function<std::string(const TempDir&)> url;
};

inline void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

// sqlite::memory: and a SQLite file called `file` in the test's TempDir.
inline std::vector<Backend> database_backends(const std::string& file) {
  return {Backend{"sqlite_memory", [](const TempDir&) { return std::string("sqlite::memory:"); }},
          Backend{"sqlite_file", [file](const TempDir& d) { return "sqlite://" + d.file(file); }}};
}

// The backends whose data outlives the Database object (not sqlite::memory:).
inline std::vector<Backend> durable_database_backends(const std::string& file) {
  auto all = database_backends(file);
  std::erase_if(all, [](const Backend& b) { return b.name == "sqlite_memory"; });
  return all;
}

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param.name;
}

}  // namespace devcycle::testing
