include(CMakePackageConfigHelpers)

get_property(prodsafe_libraries GLOBAL PROPERTY PRODSAFE_LIBRARIES)

# prodsafe_components_linking(<out> <dependency>): the components whose link
# closure reaches <dependency>, so the package config looks for a system
# library only when a requested component needs it.
function(prodsafe_components_linking out dependency)
  set(found "")
  foreach(library ${prodsafe_libraries})
    set(pending ${library})
    set(seen "")
    while(pending)
      list(POP_FRONT pending current)
      if(current IN_LIST seen)
        continue()
      endif()
      list(APPEND seen ${current})
      if(current STREQUAL dependency)
        get_target_property(component ${library} EXPORT_NAME)
        list(APPEND found ${component})
        break()
      endif()
      if(TARGET ${current})
        get_target_property(aliased ${current} ALIASED_TARGET)
        if(aliased)
          set(current ${aliased})
        endif()
        get_target_property(links ${current} INTERFACE_LINK_LIBRARIES)
        if(links)
          # A static library lists its private dependencies as $<LINK_ONLY:...>.
          string(REGEX REPLACE "\\$<LINK_ONLY:([^>]*)>" "\\1" links "${links}")
          list(FILTER links EXCLUDE REGEX "^\\$<")
          list(APPEND pending ${links})
        endif()
      endif()
    endwhile()
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

set(PRODSAFE_COMPONENTS "")
foreach(library ${prodsafe_libraries})
  get_target_property(component ${library} EXPORT_NAME)
  list(APPEND PRODSAFE_COMPONENTS ${component})
endforeach()
prodsafe_components_linking(PRODSAFE_HIREDIS_COMPONENTS PkgConfig::hiredis)
prodsafe_components_linking(PRODSAFE_HTTPLIB_COMPONENTS PkgConfig::httplib)
prodsafe_components_linking(PRODSAFE_OPENSSL_COMPONENTS OpenSSL::SSL)
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
