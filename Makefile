# eta — top-level entry points. Every target installs what is missing first.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# The sanitizer build (clang, ASan + UBSan, libFuzzer harnesses): make asan, make fuzz; make test
# runs the whole suite in it too.
ASAN_DIR ?= build-asan
FUZZ_SECONDS ?= 60
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The ThreadSanitizer build (clang): only `eta`, for the multi-threaded router's concurrency test
# (make tsan; make test runs it too). Its replicas come from the plain build.
TSAN_DIR ?= build-tsan
TSAN_ENV = TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

.PHONY: all deps configure build test unit integration asan-build asan tsan-build tsan tsan-run \
  fuzz \
  demo bench \
  bench-proxy soak fmt fmt-check clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build asan-build tsan-build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 600
	$(ASAN_ENV) ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS) --timeout 600
	$(MAKE) --no-print-directory tsan-run

$(TSAN_DIR)/build.ninja: | deps
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DETA_TSAN=ON -DETA_BUILD_TESTS=OFF \
	  -DETA_BUILD_BENCH=OFF $(CMAKE_FLAGS)

tsan-build: deps $(TSAN_DIR)/build.ninja
	cmake --build $(TSAN_DIR) -j $(JOBS) --target eta

# make tsan: the router with --threads 4 under ThreadSanitizer, many concurrent streams through
# it (tests/integration/test_threads.py); any TSan report fails it.
tsan: build tsan-build
	$(MAKE) --no-print-directory tsan-run

tsan-run:
	cd tests/integration && $(TSAN_ENV) ETA_BIN=$(CURDIR)/$(TSAN_DIR)/eta \
	  ETA_SIM_BIN=$(CURDIR)/$(BUILD_DIR)/eta ETA_SHARED_DIR=$(CURDIR)/../shared \
	  ETA_TSAN=1 python3 -m unittest -v test_threads

$(ASAN_DIR)/build.ninja: | deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DETA_SANITIZE=ON -DETA_FUZZ=ON \
	  -DETA_BUILD_BENCH=OFF $(CMAKE_FLAGS)

asan-build: deps $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS)

# make asan: unit, integration and short fuzz runs under ASan + UBSan only.
asan: asan-build
	$(ASAN_ENV) ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS) --timeout 600

# make fuzz: each libFuzzer harness for FUZZ_SECONDS from its seed corpus (fuzz/corpus/<t>/);
# new inputs and crash reproducers go to $(ASAN_DIR)/fuzz-corpus/ and $(ASAN_DIR)/fuzz-out/.
fuzz: asan-build
	@mkdir -p $(ASAN_DIR)/fuzz-out
	@set -e; for t in request metrics sse config kv_events; do \
	  mkdir -p $(ASAN_DIR)/fuzz-corpus/$$t; \
	  echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
	  $(ASAN_ENV) $(ASAN_DIR)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(ASAN_DIR)/fuzz-out/$$t- \
	    $(ASAN_DIR)/fuzz-corpus/$$t fuzz/corpus/$$t > $(ASAN_DIR)/fuzz-out/$$t.log 2>&1 || \
	    { tail -60 $(ASAN_DIR)/fuzz-out/$$t.log; echo "fuzz_$$t FAILED"; exit 1; }; \
	  grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::new_units_added)" \
	    $(ASAN_DIR)/fuzz-out/$$t.log; \
	done

unit: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L unit

integration: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L integration

# make demo: seven routers, one workload, one table (scripts/demo.py); QUICK=1 for the short form.
demo: build
	@python3 scripts/demo.py --eta $(BUILD_DIR)/eta $(if $(QUICK),--quick)

bench: build
	@bash scripts/bench.sh $(BUILD_DIR)

# make bench-proxy: the data path of eta route vs nginx vs HAProxy (scripts/bench_proxy.py);
# writes bench-proxy-out/; QUICK=1 for the short form.
bench-proxy: build
	@python3 scripts/bench_proxy.py --eta $(BUILD_DIR)/eta $(if $(QUICK),--quick)

# make soak: 3 replicas at 0.8 of their capacity, one restarted (drained, stopped, started)
# every minute, for 10 minutes (scripts/soak.py); SOAK_SECONDS=120 for a shorter run; writes
# soak-out/.
soak: build
	@python3 scripts/soak.py --eta $(BUILD_DIR)/eta $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS))

fmt: deps
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

fmt-check: deps
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR)
