# Thin wrapper over meson/ninja. The two README commands: `make demo`, `make check`.
#   make                 configure (if needed) + build into build/ (build/moat, build/moat-runtime)
#   make deps            install missing Debian packages (scripts/deps.sh)
#   make check           deps + build + every test + check-sanitize
#   make test            every test of build/ only
#   make check-sanitize  ASan+UBSan build in build-sanitize/ running the whole suite
#   make demo            deps + build + examples/demo.sh
#   make bench           deps + build + bench/run.sh + bench/image.sh + bench/env.sh
#   make clean           remove build/ and build-sanitize/
# Variables: MOAT_RUNTIME=/usr/sbin/runc runs the integration tests against another runtime;
# TESTS="lifecycle podman" runs only those tests; MESON_TEST_ARGS adds meson test flags.

BUILD          ?= build
SAN_BUILD      ?= build-sanitize
MESON          ?= meson
NINJA          ?= ninja
MESON_TEST_ARGS ?=
TESTS          ?=
SAN_OPTIONS_ASAN  = detect_leaks=1:abort_on_error=1:halt_on_error=1:disable_coredump=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:print_summary=1
SAN_OPTIONS_UBSAN = print_stacktrace=1:halt_on_error=1:abort_on_error=1

# Test files are discovered at configure time: reconfigure when the set changes.
DISCOVERED = $(sort $(wildcard tests/unit/test-*.c tests/integration/*.sh tests/fuzz/fuzz-*.c tests/hostile/*.sh tests/hostile/*.c))

.PHONY: all build deps check test check-sanitize sanitize-build demo bench clean

all: build

deps:
	@bash scripts/deps.sh

# configure $(1) with extra meson args $(2) if missing or if the set of test files changed
define configure
	@set -e; list="$(DISCOVERED)"; \
	if [ ! -f $(1)/build.ninja ]; then \
		out=$$($(MESON) setup $(1) $(2) 2>&1) || { echo "$$out" >&2; exit 1; }; \
	elif [ "$$(cat $(1)/.moat-discovered 2>/dev/null)" != "$$list" ]; then \
		out=$$($(MESON) setup --reconfigure $(1) $(2) 2>&1) || { echo "$$out" >&2; exit 1; }; \
	fi; \
	echo "$$list" > $(1)/.moat-discovered
endef

build:
	$(call configure,$(BUILD),)
	@$(NINJA) -C $(BUILD)

test: build
	$(MESON) test -C $(BUILD) --print-errorlogs $(MESON_TEST_ARGS) $(TESTS)

# Runs both suites even when the first fails, so the CI sees every result.
check: deps build
	@rc=0; \
	$(MESON) test -C $(BUILD) --print-errorlogs $(MESON_TEST_ARGS) $(TESTS) || rc=1; \
	$(MAKE) --no-print-directory check-sanitize || rc=1; \
	exit $$rc

sanitize-build:
	$(call configure,$(SAN_BUILD),-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug)
	@$(NINJA) -C $(SAN_BUILD)

# The integration tests use $(SAN_BUILD)/moat-runtime (meson passes that build's paths).
check-sanitize: sanitize-build
	ASAN_OPTIONS=$(SAN_OPTIONS_ASAN) UBSAN_OPTIONS=$(SAN_OPTIONS_UBSAN) \
	$(MESON) test -C $(SAN_BUILD) --print-errorlogs --timeout-multiplier 3 $(MESON_TEST_ARGS) $(TESTS)

demo: deps build
	MOAT_BUILD_ROOT=$(abspath $(BUILD)) bash examples/demo.sh

bench: deps build
	MOAT_BUILD_ROOT=$(abspath $(BUILD)) bash bench/run.sh
	MOAT_BUILD_ROOT=$(abspath $(BUILD)) bash bench/image.sh
	MOAT_BUILD_ROOT=$(abspath $(BUILD)) bash bench/env.sh

clean:
	rm -rf --one-file-system $(BUILD) $(SAN_BUILD)
