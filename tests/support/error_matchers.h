// Assertions on devcycle::Error: code and the words its message must contain.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "devcycle/common/error.h"

// Runs `stmt`, expects a devcycle::Error with `code` whose message contains
// every string of `parts`.
#define EXPECT_DEVCYCLE_ERROR(stmt, expected_code, ...)                                   \
  do {                                                                                    \
    try {                                                                                 \
      stmt;                                                                               \
      ADD_FAILURE() << "expected devcycle::Error from: " #stmt;                           \
    } catch (const ::devcycle::Error& e__) {                                              \
      EXPECT_EQ(::devcycle::to_string(e__.code()), ::devcycle::to_string(expected_code))  \
          << e__.what();                                                                  \
      for (const std::string& part__ : std::initializer_list<std::string>{__VA_ARGS__}) { \
        EXPECT_NE(std::string(e__.what()).find(part__), std::string::npos)                \
            << "message \"" << e__.what() << "\" lacks \"" << part__ << "\"";             \
      }                                                                                   \
    }                                                                                     \
  } while (0)
