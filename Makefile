# prodsafe's two commands: `make demo` runs the main job, `make test` passes the
# tests. Every target installs missing Debian packages first (scripts/bootstrap).

JOBS ?= $(shell nproc)
# Warnings are errors in our builds (PRODSAFE_WERROR), never in a user's.
CMAKE_CONFIGURE = cmake -G Ninja -Wno-dev -DPRODSAFE_WERROR=ON
CTEST = ctest --output-on-failure -j $(JOBS) --timeout 300
FORMAT_FILES = $(shell git ls-files '*.cpp' '*.hpp')

.PHONY: all bootstrap build test demo chaos bench release-check test-asan test-tsan fuzz format format-check clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@$(CMAKE_CONFIGURE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

# The C++ tests, then the Python package's (pytest, label python).
test: build
	cd build && $(CTEST) -LE 'bench|python'
	cd build && $(CTEST) -L python

demo: build
	build/tools/prodsafe/prodsafe demo

# The chaos suite at full sizes (minutes): worker processes against a Redis
# that is killed, paused and cut off; exits non-zero if an invariant is violated.
# Then the idempotency model checks with 1,000 seeds each (a failure prints
# its seed; rerun one with PRODSAFE_MODEL_FIRST_SEED=<seed> PRODSAFE_MODEL_SEEDS=1).
MODEL_SEEDS ?= 1000
chaos: build
	build/tools/prodsafe/prodsafe chaos --json build/chaos-report.json
	PRODSAFE_MODEL_SEEDS=$(MODEL_SEEDS) build/tests/idempotency_model_tests

bench: bootstrap
	@$(CMAKE_CONFIGURE) -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DPRODSAFE_BUILD_TESTS=OFF >/dev/null
	@cmake --build build-release -j $(JOBS)
	build-release/bench/redis_bench
	build-release/bench/idempotency_bench
	build-release/bench/retry_bench
	build-release/bench/breaker_bench
	build-release/bench/metrics_bench
	build-release/bench/tls_bench
	build-release/bench/topology_bench
	PYTHONPATH=build-release/python /usr/bin/python3 bench/python_bench.py
	PYTHONPATH=build-release/python /usr/bin/python3 bench/dashboard_bench.py --cli build-release/tools/prodsafe/prodsafe

# The whole tree (tests, benchmarks, examples, fuzz corpus drivers) built as a
# user's `cmake -DCMAKE_BUILD_TYPE=Release` builds it, with warnings as errors:
# -O3 inlines more and brings warnings the RelWithDebInfo build never sees.
# Builds only; CI runs it after `make test`.
release-check: bootstrap
	@$(CMAKE_CONFIGURE) -S . -B build-release-check -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-release-check -j $(JOBS)

test-asan: bootstrap
	@$(CMAKE_CONFIGURE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPRODSAFE_SANITIZE=address -DPRODSAFE_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $(CTEST) -LE 'bench|install'

test-tsan: bootstrap
	@$(CMAKE_CONFIGURE) -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRODSAFE_SANITIZE=thread -DPRODSAFE_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tsan.supp $(CTEST) -LE 'bench|install'

# The fuzz targets (fuzz/, clang's libFuzzer with ASan and UBSan), each for
# FUZZ_SECONDS. Seeds come from fuzz/corpus/<target>; what libFuzzer learns
# stays in build-fuzz/corpus/<target>; a crash, leak or timeout stops the run
# and leaves its input in build-fuzz/findings/<target>/ (replay it with
# build-fuzz/fuzz/<target>_fuzz FILE, or in the normal build with
# build/fuzz/<target>_fuzz_corpus FILE). Not part of `make test`: ctest only
# replays the committed corpus (fuzz.*_corpus).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = journal codec redis_url webhook_url effect_record breaker_record info \
  retry_after webhook_answer http_request cluster
fuzz: bootstrap
	@CC=clang CXX=clang++ $(CMAKE_CONFIGURE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DPRODSAFE_FUZZ=ON -DPRODSAFE_WERROR=OFF -DPRODSAFE_BUILD_TESTS=OFF -DPRODSAFE_BUILD_BENCH=OFF \
	  -DPRODSAFE_BUILD_TOOLS=OFF -DPRODSAFE_BUILD_EXAMPLES=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	@for target in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$target build-fuzz/findings/$$target; \
	  echo "== $${target}_fuzz for $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz/$${target}_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=build-fuzz/findings/$$target/ \
	    build-fuzz/corpus/$$target fuzz/corpus/$$target 2>build-fuzz/findings/$$target/log.txt; \
	  status=$$?; grep -E '^stat::number_of_executed_units|^Done ' build-fuzz/findings/$$target/log.txt; \
	  if [ $$status -ne 0 ]; then tail -n 40 build-fuzz/findings/$$target/log.txt; exit $$status; fi; \
	done

format: bootstrap
	clang-format -i $(FORMAT_FILES)

format-check: bootstrap
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build build-release build-release-check build-asan build-tsan build-fuzz
