# cmake -DPARTITA_SOURCE_DIR=DIR -P StandaloneCheck.cmake
# A clone has no ../shared beside it: fails when a script, program or test
# outside the few places allowed to reads ../shared/data. Those places are
# tests/testdata.h (PARTITA_REQUIRE_THIRD_PARTY: the units' third-party parts,
# skipped where it is absent), the tests' CMake setup that names the folder,
# the benchmarks (their --traces option) and the fuzzers' optional seeds.
# test.sh also runs the whole suite with ../shared hidden.
set(_allowed
    "tests/testdata.h" "tests/CMakeLists.txt" "tests/fuzz/run-fuzzers.sh" "cmake/StandaloneCheck.cmake"
    "test.sh") # test.sh hides the folder for the suite
file(GLOB_RECURSE _files LIST_DIRECTORIES false RELATIVE "${PARTITA_SOURCE_DIR}"
     "${PARTITA_SOURCE_DIR}/*.sh" "${PARTITA_SOURCE_DIR}/*.cpp" "${PARTITA_SOURCE_DIR}/*.h"
     "${PARTITA_SOURCE_DIR}/*.py" "${PARTITA_SOURCE_DIR}/*.cmake" "${PARTITA_SOURCE_DIR}/CMakeLists.txt"
     "${PARTITA_SOURCE_DIR}/*/CMakeLists.txt" "${PARTITA_SOURCE_DIR}/.ci/*")
set(_offenders "")
foreach(f IN LISTS _files)
    # build trees; benchmarks (not part of ./test.sh); this check's own failing fixture
    if(f MATCHES "^(build|out)/|^tests/bench/|^tests/data/standalone-violation/")
        continue()
    endif()
    list(FIND _allowed "${f}" _i)
    if(_i GREATER -1)
        continue()
    endif()
    file(STRINGS "${PARTITA_SOURCE_DIR}/${f}" _hits REGEX "\\.\\./shared|PARTITA_SHARED_DATA|shared/data/")
    list(FILTER _hits EXCLUDE REGEX "^[ \t]*(//|#)") # comments may name the folder
    if(_hits)
        list(APPEND _offenders "${f}: ${_hits}")
    endif()
endforeach()
if(_offenders)
    list(JOIN _offenders "\n  " _msg)
    message(FATAL_ERROR "these read ../shared, which a clone does not have (use tests/data, a recorded "
                        "fixture, or a unit's third-party part):\n  ${_msg}")
endif()
message(STATUS "standalone: nothing outside the allowed places reads ../shared")
