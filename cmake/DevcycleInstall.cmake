# Installs the public headers, the library, a CMake package
# (find_package(devcycle CONFIG) -> devcycle::devcycle) and devcycle.pc.
include(CMakePackageConfigHelpers)

set(DEVCYCLE_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/devcycle")

install(TARGETS devcycle EXPORT devcycleTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/devcycle DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES "${PROJECT_BINARY_DIR}/generated/devcycle/version.h"
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/devcycle)
install(EXPORT devcycleTargets NAMESPACE devcycle:: DESTINATION ${DEVCYCLE_CMAKE_DIR})

configure_package_config_file(cmake/devcycleConfig.cmake.in
  "${PROJECT_BINARY_DIR}/devcycleConfig.cmake" INSTALL_DESTINATION ${DEVCYCLE_CMAKE_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/devcycleConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/devcycleConfig.cmake"
              "${PROJECT_BINARY_DIR}/devcycleConfigVersion.cmake"
        DESTINATION ${DEVCYCLE_CMAKE_DIR})

# The .pc file finds its prefix from its own location, so the installed tree
# may be moved (and the install test may use a scratch prefix).
string(REGEX REPLACE "[^/]+" ".." DEVCYCLE_PC_UP "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
# librdkafka links as Debian ships it, shared: its own dependencies
# (lz4, zstd, sasl) come with it rather than through pkg-config --static.
set(DEVCYCLE_PC_KAFKA "")
if(DEVCYCLE_WITH_KAFKA)
  set(DEVCYCLE_PC_KAFKA " -lrdkafka")
endif()
if(DEVCYCLE_WITH_POSTGRES)
  string(APPEND DEVCYCLE_PC_KAFKA " -lpqxx -lpq")
endif()
if(DEVCYCLE_WITH_REDIS)
  string(APPEND DEVCYCLE_PC_KAFKA " -lhiredis")
endif()
configure_file(cmake/devcycle.pc.in "${PROJECT_BINARY_DIR}/devcycle.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/devcycle.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
