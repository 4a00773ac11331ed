# Flags every prodsafe target builds with (not exported to consumers).
add_library(prodsafe_build_flags INTERFACE)
target_compile_options(prodsafe_build_flags INTERFACE -Wall -Wextra -Wpedantic)
# Our own builds (the Makefile, CI) make warnings errors; a user's plain build
# of the tree, with another compiler version, must not fail on a new warning.
if(PRODSAFE_WERROR)
  target_compile_options(prodsafe_build_flags INTERFACE -Werror)
endif()

if(PRODSAFE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PRODSAFE_FUZZ needs clang (libFuzzer): configure with CXX=clang++")
  endif()
  if(NOT PRODSAFE_SANITIZE STREQUAL "")
    message(FATAL_ERROR "PRODSAFE_FUZZ already builds with ASan and UBSan; leave PRODSAFE_SANITIZE empty")
  endif()
  # Coverage for libFuzzer in every prodsafe library; the fuzz targets add
  # -fsanitize=fuzzer (libFuzzer's main) at link time.
  target_compile_options(prodsafe_build_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                                                        -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(prodsafe_build_flags INTERFACE -fsanitize=address,undefined)
endif()

if(PRODSAFE_SANITIZE STREQUAL "address")
  target_compile_options(prodsafe_build_flags INTERFACE -fsanitize=address,undefined
                                                        -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(prodsafe_build_flags INTERFACE -fsanitize=address,undefined)
elseif(PRODSAFE_SANITIZE STREQUAL "thread")
  target_compile_options(prodsafe_build_flags INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(prodsafe_build_flags INTERFACE -fsanitize=thread)
elseif(NOT PRODSAFE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "PRODSAFE_SANITIZE must be empty, 'address' or 'thread', not '${PRODSAFE_SANITIZE}'")
endif()

# prodsafe_add_library(<module> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Creates prodsafe_<module> with the alias and export name prodsafe::<module>.
function(prodsafe_add_library module)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target prodsafe_${module})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(prodsafe::${module} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${module} POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                                              $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS}
                                  PRIVATE ${ARG_PRIVATE_DEPS} $<BUILD_INTERFACE:prodsafe_build_flags>)
  set_property(GLOBAL APPEND PROPERTY PRODSAFE_LIBRARIES ${target})
endfunction()

# prodsafe::prodsafe: every library made by prodsafe_add_library so far, for a
# user who does not pick components. Call it once, after src/.
function(prodsafe_add_umbrella)
  get_property(libraries GLOBAL PROPERTY PRODSAFE_LIBRARIES)
  add_library(prodsafe_all INTERFACE)
  add_library(prodsafe::prodsafe ALIAS prodsafe_all)
  set_target_properties(prodsafe_all PROPERTIES EXPORT_NAME prodsafe)
  target_link_libraries(prodsafe_all INTERFACE ${libraries})
  set_property(GLOBAL APPEND PROPERTY PRODSAFE_LIBRARIES prodsafe_all)
endfunction()
