// Every row of some tables as text, so that a refused call can be shown to
// have changed nothing; and EXPECT_REFUSED, which does that around a call.
#pragma once

#include <initializer_list>
#include <string>

#include "devcycle/store/database.h"
#include "support/error_matchers.h"

namespace devcycle::testing {

inline std::string table_snapshot(Database& db, std::initializer_list<const char*> tables) {
  return db.read([&](Txn& t) {
    std::string out;
    for (const char* table : tables) {
      out += std::string("#") + table + "\n";
      for (const auto& row : t.query(std::string("SELECT * FROM ") + table + " ORDER BY 1")) {
        for (std::size_t i = 0; i < row.size(); ++i) {
          const auto& v = row[i];
          switch (v.type()) {
            case Value::Type::kNull:
              out += "NULL";
              break;
            case Value::Type::kInt:
              out += std::to_string(v.as_int());
              break;
            case Value::Type::kDouble:
              out += std::to_string(v.as_double());
              break;
            case Value::Type::kText:
              out += v.as_text();
              break;
            case Value::Type::kBlob:
              out += "blob:" + std::to_string(v.as_blob().bytes.size());
              break;
          }
          out += "|";
        }
        out += "\n";
      }
    }
    return out;
  });
}

}  // namespace devcycle::testing

// Expects `stmt` to throw `code` with the message parts, and the fixture's
// snapshot() to be the same before and after.
#define EXPECT_REFUSED(stmt, code, ...)             \
  do {                                              \
    const auto before__ = snapshot();               \
    EXPECT_DEVCYCLE_ERROR(stmt, code, __VA_ARGS__); \
    EXPECT_EQ(snapshot(), before__);                \
  } while (0)
