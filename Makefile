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

# `pkgcast demo` arrives with content distribution; until then `make demo` builds and says what it will do.
demo: build
	@cat docs/demo.md

asan-test:
	@$(MAKE) --no-print-directory test PRESET=asan

fuzz: deps
	@scripts/run-fuzzers 60

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
