# Runs `prodsafe chaos --quick --scenario ${SCENARIO} --break-guard-for-tests`
# (workers skip the claim and run every effect directly) and passes only when
# the run fails the way it must: exit status 1, duplicates reported as
# VIOLATED. Proves the chaos checker can fail.
# The failed run keeps its files: WORK_DIR (reused, emptied by each run)
# keeps them out of /tmp.
#   cmake -DPRODSAFE_CLI=<prodsafe> -DSCENARIO=retry_race -DWORK_DIR=<dir> -P expect_violation.cmake
execute_process(
  COMMAND ${PRODSAFE_CLI} chaos --quick --scenario ${SCENARIO} --break-guard-for-tests
          --work-dir ${WORK_DIR}
  OUTPUT_VARIABLE output
  ERROR_VARIABLE errors
  RESULT_VARIABLE status)
message("${output}${errors}")
if(NOT status STREQUAL "1")
  message(FATAL_ERROR "expected exit status 1 (an invariant VIOLATED), got '${status}'")
endif()
if(NOT output MATCHES "no op executed twice +VIOLATED")
  message(FATAL_ERROR "expected the duplicates to be reported: 'no op executed twice  VIOLATED'")
endif()
if(NOT output MATCHES "every worker got the same result +VIOLATED")
  message(FATAL_ERROR "expected diverging results to be reported as VIOLATED")
endif()
message(STATUS "the unguarded fleet was caught, as it must be")
