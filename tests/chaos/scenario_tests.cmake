# Included by ctest (the TEST_INCLUDE_FILES of tests/, see tests/CMakeLists.txt)
# each time it reads the tests: adds chaos.<name> for every scenario that
# `${PRODSAFE_CLI} chaos --list` prints ("<name> <summary>" per line), so the
# tests follow the scenarios the binary has, not the files in a folder.
# The scenarios that kill Redis and cut its connections also run with their
# embedded servers on TLS only (chaos.tls.<name>, `chaos --tls`).
# When the listing fails or names nothing (the CLI is not built, or crashed),
# one test, chaos.scenarios_NOT_LISTED, runs the listing itself, shows what
# it printed and fails.
execute_process(
  COMMAND ${PRODSAFE_CLI} chaos --list
  OUTPUT_VARIABLE listing
  ERROR_VARIABLE listing_errors
  RESULT_VARIABLE status)
set(names "")
if(status STREQUAL "0")
  string(REPLACE "\n" ";" lines "${listing}")
  foreach(line IN LISTS lines)
    if(line MATCHES "^([A-Za-z0-9_]+)( |$)")
      list(APPEND names "${CMAKE_MATCH_1}")
    endif()
  endforeach()
endif()
if(names STREQUAL "")
  add_test(chaos.scenarios_NOT_LISTED "${PRODSAFE_CLI}" chaos --list)
  # A pass pattern the listing never prints: the test fails whatever it exits with.
  set_tests_properties(chaos.scenarios_NOT_LISTED
                       PROPERTIES LABELS chaos PASS_REGULAR_EXPRESSION "^no scenario listed$")
  return()
endif()
foreach(name IN LISTS names)
  add_test(chaos.${name} "${PRODSAFE_CLI}" chaos --quick --scenario ${name})
  set_tests_properties(chaos.${name} PROPERTIES LABELS chaos TIMEOUT 300 PROCESSORS 2)
  if(name STREQUAL "kill_redis" OR name STREQUAL "network")
    add_test(chaos.tls.${name} "${PRODSAFE_CLI}" chaos --tls --quick --scenario ${name})
    set_tests_properties(chaos.tls.${name} PROPERTIES LABELS chaos TIMEOUT 300 PROCESSORS 2)
  endif()
endforeach()
