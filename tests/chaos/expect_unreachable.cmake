# Runs `prodsafe chaos --quick --scenario ${SCENARIO} --redis <a closed port>`
# and passes only when it gives up quickly and says why: exit status 2 (Redis
# unreachable, as `prodsafe check` reports it) within ${WITHIN} seconds, with a
# message naming the URL (its password redacted), instead of each worker
# waiting out its 10-minute call bound.
#   cmake -DPRODSAFE_CLI=<prodsafe> -DSCENARIO=retry_race -DWORK_DIR=<dir> -DWITHIN=15
#         -P expect_unreachable.cmake
# Nothing listens on port 1 (privileged, never a Redis): connections are refused.
set(url "redis://:hunter2@127.0.0.1:1")
string(TIMESTAMP started "%s" UTC)
execute_process(
  COMMAND ${PRODSAFE_CLI} chaos --quick --scenario ${SCENARIO} --redis ${url}
          --work-dir ${WORK_DIR}
  OUTPUT_VARIABLE output
  ERROR_VARIABLE errors
  RESULT_VARIABLE status
  TIMEOUT ${WITHIN})
string(TIMESTAMP finished "%s" UTC)
math(EXPR seconds "${finished} - ${started}")
message("${output}${errors}")
if(NOT status STREQUAL "2")
  message(FATAL_ERROR "expected exit status 2 (Redis unreachable) within ${WITHIN} s, got '${status}' after ${seconds} s")
endif()
if(NOT errors MATCHES "cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:1")
  message(FATAL_ERROR "expected stderr to say which Redis could not be reached (password redacted)")
endif()
if("${output}${errors}" MATCHES "hunter2")
  message(FATAL_ERROR "the password was printed")
endif()
message(STATUS "gave up after ${seconds} s and said why")
