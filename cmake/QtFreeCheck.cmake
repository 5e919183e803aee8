# partita_check_qt_free(<source-root> <dir>...)
# Fails when any C/C++ source or header below the named folders includes a Qt
# header (<Q...>, <qt...>) or names a Qt CMake target. Used at configure time
# and, through cmake -P, as a CTest test (tests/CMakeLists.txt).
function(partita_check_qt_free root)
    set(_offenders "")
    foreach(dir IN LISTS ARGN)
        file(GLOB_RECURSE _files LIST_DIRECTORIES false
             "${root}/${dir}/*.h" "${root}/${dir}/*.hpp" "${root}/${dir}/*.cpp"
             "${root}/${dir}/*.cc" "${root}/${dir}/*.cu" "${root}/${dir}/*.cuh")
        foreach(f IN LISTS _files)
            file(STRINGS "${f}" _hits REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](Q[A-Za-z]+|qt[A-Za-z]*/|Qt[A-Za-z]+/)")
            if(_hits)
                list(APPEND _offenders "${f}: ${_hits}")
            endif()
        endforeach()
        if(EXISTS "${root}/${dir}/CMakeLists.txt")
            file(STRINGS "${root}/${dir}/CMakeLists.txt" _hits REGEX "Qt6?::|find_package\\(Qt")
            if(_hits)
                list(APPEND _offenders "${root}/${dir}/CMakeLists.txt: ${_hits}")
            endif()
        endif()
    endforeach()
    if(_offenders)
        list(JOIN _offenders "\n  " _msg)
        message(FATAL_ERROR "Qt must not be used in core/, profiler/ or executor/:\n  ${_msg}")
    endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND DEFINED PARTITA_SOURCE_DIR)
    string(REPLACE "," ";" _dirs "${PARTITA_QT_FREE_DIRS}")
    partita_check_qt_free("${PARTITA_SOURCE_DIR}" ${_dirs})
    message(STATUS "Qt-free: ${PARTITA_QT_FREE_DIRS}")
endif()
