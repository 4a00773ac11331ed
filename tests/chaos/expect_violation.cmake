# Runs `prodsafe chaos --quick --scenario ${SCENARIO} --break-guard-for-tests`
# (workers skip the claim and run every effect directly) and passes only when
# the run fails the way it must: exit status 1, and each row named in
# VIOLATED_ROWS (separated by '|') reported as VIOLATED. Proves the
# scenario's checks can fail.
# The failed run keeps its files: WORK_DIR (reused, emptied by each run)
# keeps them out of /tmp.
#   cmake -DPRODSAFE_CLI=<prodsafe> -DSCENARIO=retry_race -DWORK_DIR=<dir>
#         "-DVIOLATED_ROWS=no op executed twice|every worker got the same result"
#         -P expect_violation.cmake
if(NOT VIOLATED_ROWS)
  message(FATAL_ERROR "VIOLATED_ROWS names no row to expect")
endif()
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
string(REPLACE "|" ";" rows "${VIOLATED_ROWS}")
foreach(row IN LISTS rows)
  if(NOT output MATCHES "${row} +VIOLATED")
    message(FATAL_ERROR "expected the row '${row}' to be reported VIOLATED")
  endif()
endforeach()
message(STATUS "the unguarded workers were caught, as they must be")
