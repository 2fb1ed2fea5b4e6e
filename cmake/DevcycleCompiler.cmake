# Compiler settings shared by every target: a `devcycle_warnings` INTERFACE
# target, ccache when present, and the sanitizer switch used by the asan preset.

if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 12)
  message(FATAL_ERROR "DevCycle needs g++ 12 or newer for C++20; found ${CMAKE_CXX_COMPILER_VERSION}")
endif()

find_program(DEVCYCLE_CCACHE ccache)
if(DEVCYCLE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER "${DEVCYCLE_CCACHE}")
  set(CMAKE_CXX_COMPILER_LAUNCHER "${DEVCYCLE_CCACHE}")
endif()

add_library(devcycle_warnings INTERFACE)
target_compile_options(devcycle_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough
  $<$<BOOL:${DEVCYCLE_WERROR}>:-Werror>)

option(DEVCYCLE_WERROR "Treat warnings as errors" OFF)
option(DEVCYCLE_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
if(DEVCYCLE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
