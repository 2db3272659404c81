find_package(nlohmann_json 3.10 REQUIRED)

# pkgcast_test(NAME SOURCES... LIBS ...): one GoogleTest binary registered with CTest.
function(pkgcast_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 TEST_PREFIX "${name}."
    PROPERTIES ENVIRONMENT "PKGCAST_SOURCE_DIR=${PROJECT_SOURCE_DIR};PKGCAST_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()
