# cmake -DBUILD_DIR=.. -DSOURCE_DIR=<this directory> -DWORK_DIR=.. -DCXX=.. -DGENERATOR=.. -P check_install.cmake
# Installs the "client" component of a built tree into a fresh prefix, then configures, builds and runs the
# outside project of this directory against it (find_package(pkgcast), pkgcast::client).
file(REMOVE_RECURSE ${WORK_DIR})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix --component client)
if(EXISTS ${WORK_DIR}/prefix/bin)
  message(FATAL_ERROR "the client component installed programs: it is the library only")
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/pkgcast_install_check)

set(expected "select * from __InstanceModificationEvent within 120 where TargetInstance isa 'SMS_PackageStatusRootSummarizer'
Office 2 7
WBEM_E_TRANSPORT_FAILURE
WBEM_E_TRANSPORT_FAILURE
")
if(NOT run_output STREQUAL expected)
  message(FATAL_ERROR "unexpected output:\n${run_output}\nexpected:\n${expected}")
endif()
message(STATUS "the installed package builds and links an outside project")
