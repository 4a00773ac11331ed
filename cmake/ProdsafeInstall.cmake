include(CMakePackageConfigHelpers)

get_property(prodsafe_libraries GLOBAL PROPERTY PRODSAFE_LIBRARIES)
install(TARGETS ${prodsafe_libraries} EXPORT prodsafeTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/prodsafe DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(prodsafe_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/prodsafe)
install(EXPORT prodsafeTargets NAMESPACE prodsafe:: DESTINATION ${prodsafe_cmake_dir})
configure_package_config_file(cmake/prodsafeConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/prodsafeConfig.cmake
                              INSTALL_DESTINATION ${prodsafe_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/prodsafeConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/prodsafeConfig.cmake
              ${PROJECT_BINARY_DIR}/prodsafeConfigVersion.cmake
        DESTINATION ${prodsafe_cmake_dir})
if(PRODSAFE_BUILD_TOOLS)
  install(TARGETS prodsafe_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
