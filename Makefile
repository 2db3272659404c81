# The two commands a new user runs: `make demo` and `make test`.
PRESET ?= release
BUILD := build/$(PRESET)

.PHONY: deps configure build test demo asan-test fuzz format clean

deps:
	@scripts/install-deps

configure: deps
	@test -f $(BUILD)/build.ninja || cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

# Every test, PostgreSQL's included: scripts/run-tests starts a throwaway PostgreSQL server unless
# PKGCAST_TEST_PG_URL names one, and ends with a line naming anything skipped and why.
test: build
	@scripts/run-tests $(PRESET)

# The main job in one command (docs/demo.md): a server, two sites, four DP agents, a package distributed live.
demo: build
	@$(BUILD)/src/cli/pkgcast demo $(DEMO_FLAGS)

asan-test:
	@$(MAKE) --no-print-directory test PRESET=asan

fuzz: deps
	@scripts/run-fuzzers 60

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
