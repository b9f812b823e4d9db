# ngsock — GNU make entry points (Linux build host).
# On FreeBSD, `make` is bmake and reads BSDmakefile instead.
#
#   make            bootstrap the toolchain (first run) and build both modules
#   make test       run every test: format, clippy, unit tests, the kernel-linker
#                   gate, the host kernel harness, vm-tests (skipped without an image)

SHELL     := /bin/sh
BUILD     ?= build
MODULES   := $(BUILD)/ng_ksocket.ko $(BUILD)/ng_socket.ko

.PHONY: all bootstrap ko test check fmt clippy unit man bsd gate harness vm-test vm-unit bench demo \
        load unload clean

all: bootstrap ko

bootstrap:
	@sh scripts/bootstrap.sh >/dev/null

ko: $(MODULES)

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

# The host kernel harness on chosen modules and scenarios:
#   make harness KO="build/ng_socket.ko build/ng_ksocket.ko" SCENARIOS="scenarios/ksocket-udp.ngs"
# (defaults: both modules, every scenario file). Reference mode,
#   make harness FREEBSD_SRC=/path/to/freebsd/src
# also builds FreeBSD's own ng_ksocket.c and ng_socket.c from that tree
# (scripts/build-ref.sh, into build/ref) and runs the scenarios against
# them: every difference must be a deviation our man pages document. (No
# separate load/unload round here: FreeBSD's ng_socket refuses MOD_UNLOAD,
# itself a documented deviation that socket-unload.ngs reports.)
KO        ?= $(BUILD)/ng_socket.ko $(BUILD)/ng_ksocket.ko
SCENARIOS ?= scenarios/*.ngs
FREEBSD_SRC ?=
REF       := $(BUILD)/ref
harness: all
	@. scripts/env.sh && $$CARGO run --quiet -p ngharness -- load $(KO) && \
	  $$CARGO run --quiet -p ngharness -- run $(foreach k,$(KO),--ko $(k)) $(SCENARIOS)
	@if [ -n "$(FREEBSD_SRC)" ]; then \
	  sh scripts/build-ref.sh "$(FREEBSD_SRC)" $(REF) && . scripts/env.sh && \
	  echo "==> FreeBSD's modules from $(FREEBSD_SRC): which scenarios differ" && \
	  $$CARGO run --quiet -p ngharness -- run --reference --ko $(REF)/ng_socket.ko \
	    --ko $(REF)/ng_ksocket.ko $(SCENARIOS); \
	fi

vm-test: all
	@sh vm-tests/run.sh $(MODULES)

vm-unit:
	@python3 -m unittest discover -s vm-tests/tests

bench: all
	@FREEBSD_SRC="$(FREEBSD_SRC)" sh scripts/bench.sh

demo: all
	@sh scripts/demo.sh

unload load:
	@echo "make $@: loading kernel modules needs FreeBSD (there, make reads BSDmakefile)." >&2
	@echo "On this host, 'make harness' loads the built modules into the host kernel harness." >&2
	@exit 1

clean:
	rm -rf $(BUILD)
	. scripts/env.sh && $$CARGO clean
