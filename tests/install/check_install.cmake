# Installs the build tree into a fresh prefix and builds two consumers against
# it: one of prodsafe::redis and prodsafe::embedded, and one of the Redis-free
# components only, which must neither include a Redis header nor link hiredis.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "command failed (${result}): ${ARGN}\n${out}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
foreach(required include/prodsafe/redis/client.hpp lib/cmake/prodsafe/prodsafeConfig.cmake)
  if(NOT EXISTS ${WORK_DIR}/prefix/${required})
    message(FATAL_ERROR "the installed tree lacks ${required}")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${WORK_DIR}/build -G Ninja
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE result OUTPUT_VARIABLE out
                ERROR_VARIABLE out)
if(NOT result EQUAL 0 OR NOT out MATCHES "PONG")
  message(FATAL_ERROR "the consumer failed (${result}):\n${out}")
endif()
message(STATUS "consumer says: ${out}")

find_program(ninja NAMES ninja ninja-build REQUIRED)
set(in_memory ${WORK_DIR}/in_memory_build)
run(${CMAKE_COMMAND} -S ${IN_MEMORY_CONSUMER_SOURCE} -B ${in_memory} -G Ninja
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${in_memory})
# What the compiler read (Ninja's record of each object's headers) and the
# link command: no prodsafe/redis/ header, no hiredis.
execute_process(COMMAND ${ninja} -C ${in_memory} -t deps OUTPUT_VARIABLE headers
                RESULT_VARIABLE result)
if(NOT result EQUAL 0 OR NOT headers MATCHES "prodsafe/idempotency/side_effect_wrapper.hpp")
  message(FATAL_ERROR "cannot read the in-memory consumer's headers (${result}):\n${headers}")
endif()
if(headers MATCHES "prodsafe/redis/|hiredis")
  string(REGEX MATCHALL "[^\n]*(prodsafe/redis/|hiredis)[^\n]*" offenders "${headers}")
  message(FATAL_ERROR "the in-memory consumer includes Redis headers:\n${offenders}")
endif()
execute_process(COMMAND ${ninja} -C ${in_memory} -t commands in_memory_consumer
                OUTPUT_VARIABLE commands RESULT_VARIABLE result)
if(NOT result EQUAL 0 OR NOT commands MATCHES "libprodsafe_idempotency.a")
  message(FATAL_ERROR "cannot read the in-memory consumer's link command (${result}):\n${commands}")
endif()
if(commands MATCHES "hiredis|libprodsafe_redis")
  message(FATAL_ERROR "the in-memory consumer links Redis:\n${commands}")
endif()
execute_process(COMMAND ${in_memory}/in_memory_consumer ${WORK_DIR}/journal
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT result EQUAL 0 OR NOT out MATCHES "effect runs 1, retry calls 2, answer 42, window attempts 2, breaker open")
  message(FATAL_ERROR "the in-memory consumer failed (${result}):\n${out}")
endif()
message(STATUS "in-memory consumer says: ${out}")

# The Python package, when the build made one: installed under the prefix,
# imported from there (not from the build tree) by the interpreter it was
# built for, in a directory without the sources.
if(PYTHON_EXECUTABLE AND PYTHON_INSTALL_DIR)
  if(IS_ABSOLUTE ${PYTHON_INSTALL_DIR})
    message(FATAL_ERROR "PRODSAFE_PYTHON_INSTALL_DIR is absolute; this check needs it under the prefix")
  endif()
  set(site ${WORK_DIR}/prefix/${PYTHON_INSTALL_DIR})
  foreach(required prodsafe/__init__.py prodsafe/errors.py prodsafe/py.typed prodsafe/client.pyi)
    if(NOT EXISTS ${site}/${required})
      message(FATAL_ERROR "the installed Python package lacks ${required} (in ${site})")
    endif()
  endforeach()
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${site} PYTHONDONTWRITEBYTECODE=1
            ${PYTHON_EXECUTABLE} -c
            "import prodsafe, prodsafe.testing; assert prodsafe.__file__.startswith('${site}'), prodsafe.__file__; print('python package', prodsafe.__version__, len(prodsafe.__all__), 'names')"
    WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "the installed Python package does not import (${result}):\n${out}")
  endif()
  message(STATUS "${out}")
endif()
