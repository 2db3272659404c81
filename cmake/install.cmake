# Installing the client library (component "client"): pkgcast::client and the static libraries it links
# (pkgcast::core, pkgcast::cim), the headers of include/pkgcast/ (and the two of src/core/ they include), and a
# CMake package so that another project can write
#   find_package(pkgcast REQUIRED)
#   target_link_libraries(app PRIVATE pkgcast::client)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PKGCAST_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/pkgcast)

set_target_properties(pkgcast_core PROPERTIES EXPORT_NAME core)
set_target_properties(pkgcast_cim PROPERTIES EXPORT_NAME cim)

install(TARGETS pkgcast_core pkgcast_cim pkgcast_client
  EXPORT pkgcastTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT client
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT client
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/pkgcast
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT client
  FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_SOURCE_DIR}/src/core/result.h ${PROJECT_SOURCE_DIR}/src/core/wbem.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pkgcast/detail/core COMPONENT client)
install(EXPORT pkgcastTargets NAMESPACE pkgcast:: DESTINATION ${PKGCAST_CMAKE_DIR} COMPONENT client)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/pkgcastConfig.cmake.in
  ${PROJECT_BINARY_DIR}/pkgcastConfig.cmake INSTALL_DESTINATION ${PKGCAST_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/pkgcastConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/pkgcastConfig.cmake ${PROJECT_BINARY_DIR}/pkgcastConfigVersion.cmake
  DESTINATION ${PKGCAST_CMAKE_DIR} COMPONENT client)
