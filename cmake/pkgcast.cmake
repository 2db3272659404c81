find_package(nlohmann_json 3.10 REQUIRED)

# pkgcast_test(NAME SOURCES... LIBS... [LABELS...]): one GoogleTest binary whose tests CTest discovers as
# NAME.Suite.Case, labelled "unit" unless told otherwise ("e2e" for tests that start processes or servers).
# The tree's locations are compiled in (PKGCAST_SOURCE_DIR_DEFAULT, PKGCAST_BINARY_DIR_DEFAULT); the environment
# variables PKGCAST_SOURCE_DIR / PKGCAST_BINARY_DIR override them. (A list-valued ENVIRONMENT does not survive
# gtest_discover_tests' generated script, so the defaults are not passed that way.)
function(pkgcast_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(${name} PRIVATE
    PKGCAST_SOURCE_DIR_DEFAULT="${PROJECT_SOURCE_DIR}" PKGCAST_BINARY_DIR_DEFAULT="${PROJECT_BINARY_DIR}")
  include(GoogleTest)
  set(labels ${T_LABELS})
  if(NOT labels)
    set(labels unit)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 TEST_PREFIX "${name}."
    PROPERTIES LABELS "${labels}")
endfunction()
