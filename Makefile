# cairn's developer entry points: a thin wrapper around scripts/ and meson.
#
#   make              install missing build packages (once), build build/cairn
#   make check        build, then unit + fuzz-replay tests (normal and
#                     ASan+UBSan builds), e2e tests (bats), format check
#   make demo         build, then run scripts/demo.sh
#   make bench        run every bench/*.sh
#   make fuzz         libFuzzer run of every fuzz target (FUZZ_SECONDS each)
#   make fuzz-long    the fuzz campaign: FUZZ_LONG_SECONDS (600) per target,
#                     FUZZ_JOBS (2) at a time, niced; merges corpora, logs to
#                     fuzz/CAMPAIGN.md
#   make stress       the e2e stress tests with CAIRN_STRESS_ITERS=1000
#   make stress-tests the serving and remote e2e files STRESS_ROUNDS (30)
#                     times under stress-ng: per-test failures, flake rate
#   make format       clang-format our own sources; make format-check checks
#   make deps         run scripts/install-deps.sh for every set now
#   make clean        remove build/, build-asan/ and build-fuzz/
#
# The dependency installer runs once per version of scripts/install-deps.sh:
# a stamp in build/ is named after the script's hash. See docs/development.md.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:

BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_LONG_SECONDS ?= 600
FUZZ_JOBS ?= 2
CAIRN_STRESS_ITERS ?= 50
STRESS_ROUNDS ?= 30
CLANG_FORMAT ?= clang-format-14
export CLANG_FORMAT

DEPS_HASH := $(shell sha256sum scripts/install-deps.sh 2>/dev/null | cut -c1-16)
# One stamp per set of packages (scripts/install-deps.sh): build for `make`
# and `make demo`, test for `make check`, bench for `make bench`.
DEPS_STAMP := $(BUILD)/.deps-build-$(DEPS_HASH)
TEST_DEPS_STAMP := $(BUILD)/.deps-test-$(DEPS_HASH)
BENCH_DEPS_STAMP := $(BUILD)/.deps-bench-$(DEPS_HASH)

.PHONY: all build deps asan check demo bench fuzz fuzz-long stress format format-check clean

all: build

deps:
	scripts/install-deps.sh build test bench
	mkdir -p $(BUILD)
	rm -f $(BUILD)/.deps-*
	touch $(DEPS_STAMP) $(TEST_DEPS_STAMP) $(BENCH_DEPS_STAMP)

$(BUILD)/.deps-%-$(DEPS_HASH):
	scripts/install-deps.sh $*
	mkdir -p $(BUILD)
	rm -f $(BUILD)/.deps-$*-*
	touch $@

# meson setup only when the directory is not configured yet; once it is,
# ninja re-runs meson by itself whenever a meson.build changes.
$(BUILD)/build.ninja: | $(DEPS_STAMP)
	meson setup $(if $(wildcard $(BUILD)/meson-private/coredata.dat),--reconfigure) $(BUILD)

build: $(DEPS_STAMP) $(BUILD)/build.ninja
	ninja -C $(BUILD)

# AddressSanitizer + UndefinedBehaviorSanitizer build for the unit tests and
# the fuzz replay. -Db_lundef=false: sanitizer runtimes resolve symbols late.
# werror off here only: -O2 with sanitizers makes gcc warn falsely, and the
# warnings are enforced by the normal build.
$(ASAN_BUILD)/build.ninja: | $(TEST_DEPS_STAMP)
	meson setup $(if $(wildcard $(ASAN_BUILD)/meson-private/coredata.dat),--reconfigure) \
	    $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false

asan: $(TEST_DEPS_STAMP) $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

check: $(TEST_DEPS_STAMP) build asan
	BUILD=$(BUILD) ASAN_BUILD=$(ASAN_BUILD) CAIRN_STRESS_ITERS=$(CAIRN_STRESS_ITERS) \
	    scripts/check.sh

demo: build
	@if [[ ! -f scripts/demo.sh ]]; then \
	    echo "make demo: scripts/demo.sh does not exist yet" >&2; exit 1; \
	fi
	CAIRN_BUILD_DIR=$(CURDIR)/$(BUILD) bash scripts/demo.sh

bench: $(BENCH_DEPS_STAMP) build
	@shopt -s nullglob; scripts=(bench/*.sh); \
	if (($${#scripts[@]} == 0)); then \
	    echo "make bench: no bench/*.sh benchmarks exist yet" >&2; exit 1; \
	fi; \
	status=0; \
	for s in "$${scripts[@]}"; do \
	    echo "== $$s"; \
	    CAIRN_BUILD_DIR=$(CURDIR)/$(BUILD) bash "$$s" || { echo "make bench: $$s failed" >&2; status=1; }; \
	done; \
	exit $$status

# The libFuzzer build: clang-14, the whole tree instrumented for coverage
# (fuzzer-no-link) and sanitized, every fuzz_NAME linked with -fsanitize=fuzzer.
$(FUZZ_BUILD)/build.ninja: | $(TEST_DEPS_STAMP)
	CC=clang-14 meson setup $(if $(wildcard $(FUZZ_BUILD)/meson-private/coredata.dat),--reconfigure) \
	    $(FUZZ_BUILD) -Dfuzz=true -Dtests=false -Dwerror=false \
	    -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link

fuzz: $(TEST_DEPS_STAMP) $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

fuzz-long: $(DEPS_STAMP) $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_LONG_SECONDS=$(FUZZ_LONG_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) \
	    scripts/fuzz-long.sh

stress: build
	CAIRN_BUILD_DIR=$(CURDIR)/$(BUILD) CAIRN_STRESS_ITERS=1000 \
	    bats --tap --filter stress tests/e2e

.PHONY: stress-tests
stress-tests: build
	CAIRN_BUILD_DIR=$(CURDIR)/$(BUILD) scripts/stress-tests.sh $(STRESS_ROUNDS)

format:
	scripts/format.sh

format-check:
	scripts/format.sh --check

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
