# ngsock — GNU make entry points (Linux build host).
# On FreeBSD, `make` is bmake and reads BSDmakefile instead.
#
#   make            bootstrap the toolchain (first run) and build both modules
#   make test       run every test: format, clippy, unit tests, the kernel-linker
#                   gate, the host kernel harness (1 and 4 CPUs), race scenarios,
#                   vm-tests (skipped without an image)
#   make race SEEDS=N  race scenarios under N seeded schedules each

SHELL     := /bin/sh
BUILD     ?= build
MODULES   := $(BUILD)/ng_ksocket.ko $(BUILD)/ng_socket.ko

.PHONY: all bootstrap ko bridge bridge-test test check fmt clippy unit man bsd gate harness race vm-test vm-unit bench demo \
        load unload clean

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

test: all
	@sh scripts/test.sh all

fmt clippy unit man bsd gate:
	@sh scripts/test.sh $@

# The bridge's C programs and the scenarios through the bridge.
bridge-test: all
	@sh scripts/test.sh bridge

# The host kernel harness on chosen modules and scenarios:
#   make harness KO="build/ng_socket.ko build/ng_ksocket.ko" SCENARIOS="scenarios/ksocket-udp.ngs"
# (defaults: both modules, every scenario file).
KO        ?= $(BUILD)/ng_socket.ko $(BUILD)/ng_ksocket.ko
SCENARIOS ?= scenarios/*.ngs
harness: all
	@. scripts/env.sh && $$CARGO run --quiet -p ngharness -- load $(KO) && \
	  $$CARGO run --quiet -p ngharness -- run $(foreach k,$(KO),--ko $(k)) $(SCENARIOS)

# Race scenarios on 4 virtual CPUs under seeds 1..SEEDS (plus the kept
# regression seeds); `make test` runs 150. One schedule replays with
#   ngharness race --ko build/ng_socket.ko --ko build/ng_ksocket.ko --scenario NAME --seed S --trace
SEEDS ?= 150
race: all
	@RACE_SEEDS=$(SEEDS) sh scripts/test.sh race

vm-test: all
	@sh vm-tests/run.sh $(MODULES)

vm-unit:
	@python3 -m unittest discover -s vm-tests/tests

bench: all
	@sh scripts/bench.sh

demo: all
	@sh scripts/demo.sh

unload load:
	@echo "make $@: loading kernel modules needs FreeBSD (there, make reads BSDmakefile)." >&2
	@echo "On this host, 'make harness' loads the built modules into the host kernel harness." >&2
	@exit 1

clean:
	rm -rf $(BUILD)
	. scripts/env.sh && $$CARGO clean
