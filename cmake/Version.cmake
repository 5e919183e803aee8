# The version, from one place: project(VERSION) in CMakeLists.txt, and where
# the source is a git checkout, what `git describe` says of it (read at
# configure time). Defines PARTITA_VERSION_STRING ("0.1.0" or
# "0.1.0 (git v0.1.0-12-gabc1234)") and partita_version_source(FILE...),
# which gives only those sources (the programs' main.cpp: a new describe
# recompiles nothing else) PARTITA_VERSION (the plain number) and
# PARTITA_VERSION_STRING.
set(PARTITA_VERSION_STRING "${PROJECT_VERSION}")
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS "${PROJECT_SOURCE_DIR}/.git")
    execute_process(COMMAND "${GIT_EXECUTABLE}" describe --always --dirty --tags
                    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
                    OUTPUT_VARIABLE _describe OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE _rc ERROR_QUIET)
    if(_rc EQUAL 0 AND _describe)
        set(PARTITA_VERSION_STRING "${PROJECT_VERSION} (git ${_describe})")
    endif()
    # The last commit's date (RFC 2822, as Debian's changelog wants it).
    execute_process(COMMAND ${CMAKE_COMMAND} -E env LC_ALL=C "${GIT_EXECUTABLE}" log -1
                            "--date=format:%a, %d %b %Y %H:%M:%S %z" --format=%ad
                    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
                    OUTPUT_VARIABLE PARTITA_COMMIT_DATE OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
function(partita_version_source)
    set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_DEFINITIONS PARTITA_VERSION="${PROJECT_VERSION}"
                 PARTITA_VERSION_STRING="${PARTITA_VERSION_STRING}")
endfunction()
