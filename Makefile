# eta — top-level entry points. Every target installs what is missing first.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test unit integration demo bench bench-proxy soak fmt fmt-check clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 600

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
	rm -rf $(BUILD_DIR)
