# ngsock — GNU make entry points (Linux build host).
# On FreeBSD, `make` is bmake and reads BSDmakefile instead.
#
#   make            bootstrap the toolchain (first run) and build both modules
#   make test       run every test: format, clippy, unit tests, the kernel-linker
#                   gate, the host kernel harness (1 and 4 CPUs), race scenarios,
#                   vm-tests (skipped without an image)
#   make race SEEDS=N  race scenarios under N seeded schedules each
#   make fuzz       coverage-guided fuzzing, FUZZ_SECS seconds per target
#   make coverage   which functions and edges of the modules no test reaches

SHELL     := /bin/sh
BUILD     ?= build
MODULES   := $(BUILD)/ng_ksocket.ko $(BUILD)/ng_socket.ko

.PHONY: all bootstrap ko ko-fuzz ko-cov bridge bridge-test freebsd-check test check fmt clippy unit man docs bsd gate \
        harness race vm-test vm-unit bench demo fuzz coverage load unload clean

all: bootstrap ko

bootstrap:
	@sh scripts/bootstrap.sh >/dev/null

ko: $(MODULES) bridge

# The PF_NETGRAPH bridge for Linux programs: build/libngbridge.so and the
# compatibility headers in build/include (docs/bridge.md).
bridge:
	@sh scripts/build-bridge.sh $(BUILD)

# Cargo tracks the sources itself; always ask it (it is quick when nothing changed).
$(BUILD)/ng_ksocket.ko: FORCE
	@sh scripts/build-ko.sh ksocket ng_ksocket $@
$(BUILD)/ng_socket.ko: FORCE
	@sh scripts/build-ko.sh socket ng_socket $@
FORCE:

# Instrumented flavours for the host kernel harness only (scripts/build-ko.sh).
ko-fuzz: all
	@sh scripts/build-ko.sh ksocket ng_ksocket $(BUILD)/fuzz/ng_ksocket.ko fuzz
	@sh scripts/build-ko.sh socket ng_socket $(BUILD)/fuzz/ng_socket.ko fuzz
ko-cov: all
	@sh scripts/build-ko.sh ksocket ng_ksocket $(BUILD)/cov/ng_ksocket.ko cov
	@sh scripts/build-ko.sh socket ng_socket $(BUILD)/cov/ng_socket.ko cov

test: all
	@sh scripts/test.sh all

fmt clippy unit man docs bsd gate:
	@sh scripts/test.sh $@

# The bridge's C programs and the scenarios through the bridge.
bridge-test: all
	@sh scripts/test.sh bridge

# FreeBSD's own ngctl and tests/sys/netgraph, built for Linux from a FreeBSD
# source tree, against the modules through the bridge (docs/bridge.md):
#   make freebsd-check FREEBSD_SRC=/path/to/freebsd-src
# (or with what is already in build/freebsd, or NGCTL=/path/to/ngctl).
freebsd-check: all
	@sh scripts/test.sh freebsd

# The host kernel harness on chosen modules and scenarios:
#   make harness KO="build/ng_socket.ko build/ng_ksocket.ko" SCENARIOS="scenarios/ksocket-udp.ngs"
# (defaults: both modules, every scenario file). Reference mode,
#   make harness FREEBSD_SRC=/path/to/freebsd/src
# also builds FreeBSD's own ng_ksocket.c and ng_socket.c from that tree
# (scripts/build-ref.sh, into build/ref) and runs the scenarios against
# them: every difference must be a deviation our man pages document. (No
# separate load/unload round here: FreeBSD's ng_socket refuses every
# MOD_UNLOAD, and nothing there opts into unloading it.)
KO        ?= $(BUILD)/ng_socket.ko $(BUILD)/ng_ksocket.ko
SCENARIOS ?= scenarios/*.ngs
FREEBSD_SRC ?=
REF       := $(BUILD)/ref
FUZZ_SECS ?= 60
FUZZ_TARGETS ?= ksock-msg ngsock-calls ksock-data
harness: all
	@. scripts/env.sh && $$CARGO run --quiet -p ngharness -- load $(KO) && \
	  $$CARGO run --quiet -p ngharness -- run $(foreach k,$(KO),--ko $(k)) $(SCENARIOS)
	@if [ -n "$(FREEBSD_SRC)" ]; then \
	  sh scripts/build-ref.sh "$(FREEBSD_SRC)" $(REF) && . scripts/env.sh && \
	  echo "==> FreeBSD's modules from $(FREEBSD_SRC): which scenarios differ" && \
	  $$CARGO run --quiet -p ngharness -- run --reference --ko $(REF)/ng_socket.ko \
	    --ko $(REF)/ng_ksocket.ko $(SCENARIOS); \
	fi

# Race scenarios on 4 virtual CPUs under seeds 1..SEEDS (plus the kept
# regression seeds); `make test` runs 150 (docs/race.md). One schedule replays with
#   ngharness race --ko build/ng_socket.ko --ko build/ng_ksocket.ko --scenario NAME --seed S --trace
SEEDS ?= 150
race: all
	@RACE_SEEDS=$(SEEDS) sh scripts/test.sh race

vm-test: all
	@sh vm-tests/run.sh $(MODULES)

vm-unit:
	@python3 -m unittest discover -s vm-tests/tests

bench: all
	@FREEBSD_SRC="$(FREEBSD_SRC)" sh scripts/bench.sh

demo: all
	@sh scripts/demo.sh

# Coverage-guided fuzzing with LibAFL: make fuzz FUZZ_SECS=600 [FUZZ_TARGETS="ksock-msg ..."]
fuzz: all
	@FUZZ_SECS=$(FUZZ_SECS) FUZZ_TARGETS="$(FUZZ_TARGETS)" sh scripts/fuzz.sh

coverage: all
	@sh scripts/coverage.sh

unload load:
	@echo "make $@: loading kernel modules needs FreeBSD (there, make reads BSDmakefile)." >&2
	@echo "On this host, 'make harness' loads the built modules into the host kernel harness." >&2
	@exit 1

clean:
	rm -rf $(BUILD)
	. scripts/env.sh && $$CARGO clean
