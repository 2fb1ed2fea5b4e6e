# Run by ctest with -P: configuring must fail clearly when an enabled optional
# dependency is missing, and succeed once that part is switched off.
function(configure out_var rc_var)
  file(REMOVE_RECURSE "${WORK_DIR}/build")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_LIBDIR=${WORK_DIR}/no-pkgconfig PKG_CONFIG_PATH=
            ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
            -DDEVCYCLE_BUILD_TESTS=OFF -DDEVCYCLE_BUILD_BENCH=OFF -DDEVCYCLE_BUILD_EXAMPLES=OFF ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${out_var} "${out}${err}" PARENT_SCOPE)
  set(${rc_var} ${rc} PARENT_SCOPE)
endfunction()

function(expect_failure needle)
  configure(out rc ${ARGN})
  if(rc EQUAL 0)
    message(FATAL_ERROR "configure with ${ARGN} succeeded; expected it to fail with '${needle}'")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " out "${out}")  # CMake wraps long messages
  string(FIND "${out}" "${needle}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "configure failed without saying '${needle}':\n${out}")
  endif()
endfunction()

# pkg-config sees only libsodium and re2 (which the core always needs): each
# enabled scale-out backend names its package.
file(MAKE_DIRECTORY "${WORK_DIR}/no-pkgconfig")
foreach(core libsodium re2)
  execute_process(COMMAND pkg-config --variable=pcfiledir ${core} OUTPUT_VARIABLE core_dir
                  OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config cannot find ${core} on this machine")
  endif()
  file(COPY "${core_dir}/${core}.pc" DESTINATION "${WORK_DIR}/no-pkgconfig")
endforeach()
expect_failure("DEVCYCLE_WITH_POSTGRES=ON needs libpqxx: install the Debian package libpqxx-dev")
expect_failure("DEVCYCLE_WITH_KAFKA=ON needs rdkafka" -DDEVCYCLE_WITH_POSTGRES=OFF)
expect_failure("DEVCYCLE_WITH_REDIS=ON needs hiredis" -DDEVCYCLE_WITH_POSTGRES=OFF
               -DDEVCYCLE_WITH_KAFKA=OFF)
expect_failure("DEVCYCLE_BUILD_PYTHON=ON, but that part has not been written yet"
               -DDEVCYCLE_BUILD_PYTHON=ON)
configure(out rc -DDEVCYCLE_WITH_POSTGRES=OFF -DDEVCYCLE_WITH_KAFKA=OFF -DDEVCYCLE_WITH_REDIS=OFF)
set(configured_rc ${rc})
set(configured_out "${out}")
# Without RE2 or libsodium nothing configures, and the message names the package.
file(REMOVE "${WORK_DIR}/no-pkgconfig/re2.pc")
expect_failure("install the Debian package libre2-dev" -DDEVCYCLE_WITH_POSTGRES=OFF
               -DDEVCYCLE_WITH_KAFKA=OFF -DDEVCYCLE_WITH_REDIS=OFF)
file(REMOVE "${WORK_DIR}/no-pkgconfig/libsodium.pc")
expect_failure("install the Debian package libsodium-dev" -DDEVCYCLE_WITH_POSTGRES=OFF
               -DDEVCYCLE_WITH_KAFKA=OFF -DDEVCYCLE_WITH_REDIS=OFF)
set(rc ${configured_rc})
set(out "${configured_out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure with every optional backend off failed:\n${out}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
