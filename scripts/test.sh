#!/bin/sh
# The project's test command (`make test`): every check, in order, each one
# reported as a step; ends with one line "test: N passed, M failed".
#
# usage: scripts/test.sh [all|fmt|clippy|unit|man|docs|bsd|gate|harness|race|bridge|freebsd|vm]
#
# freebsd: FreeBSD's own ngctl and tests/sys/netgraph, built for Linux, run
# through the bridge (docs/bridge.md) when they are available: built from
# $FREEBSD_SRC (a FreeBSD source tree) into $FREEBSD_USERLAND (default
# build/freebsd), or already there; $NGCTL names another ngctl binary.
# Without them these steps are skipped, each with one line saying so.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
cd "$top"
what=${1:-all}
BUILD=${BUILD:-build}
passed=0
failed=0
failures=""

step() {
    name=$1
    shift
    echo "==> $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "==> $name: ok"
    else
        failed=$((failed + 1))
        failures="$failures $name"
        echo "==> $name: FAILED"
    fi
}

want() { [ "$what" = all ] || [ "$what" = "$1" ]; }

kclippy() {
    "$CARGO" clippy --quiet -p ngsock --release --target "$KTARGET" -Zbuild-std=core \
        --features "$1" -- -D warnings
}

if want fmt; then
    step "rustfmt" "$CARGO" fmt --all -- --check
fi
if want clippy; then
    step "clippy (kernel, ng_ksocket)" kclippy ksocket
    step "clippy (kernel, ng_socket)" kclippy socket
    step "clippy (host crates and tests)" "$CARGO" clippy --quiet --workspace --all-targets -- -D warnings
fi
if want unit; then
    step "unit and harness self-tests (cargo test)" "$CARGO" test --quiet --workspace
    # The harness's tests again, the kernel on 4 virtual CPUs.
    step "harness self-tests on 4 CPUs (NGHARNESS_CPUS=4 cargo test)" \
        env NGHARNESS_CPUS=4 "$CARGO" test --quiet -p ngharness
fi
if want man; then
    step "man pages (mandoc -Tlint)" mandoc -Tlint -Wwarning man/*.4
fi
if want docs; then
    step "docs: cited documents, sections and rows are in the repository; rows name their tests" \
        python3 scripts/check-docs.py
    step "docs: the checker's own tests" python3 -m unittest discover -s scripts/tests
fi
if want bsd; then
    step "FreeBSD build files and port (bmake, make load/install scripts)" \
        python3 -m unittest discover -s kmod/tests
fi
if want gate; then
    step "kernel-linker gate" "$CARGO" run --quiet --release -p kogate -- \
        "$BUILD/ng_ksocket.ko" "$BUILD/ng_socket.ko"
    step "modules: EXPORT_SYMS, no build-machine paths" sh scripts/check-ko.sh \
        "$BUILD/ng_ksocket.ko" "$BUILD/ng_socket.ko"
fi
if want harness; then
    step "harness: load and unload both modules" "$CARGO" run --quiet -p ngharness -- \
        load "$BUILD/ng_socket.ko" "$BUILD/ng_ksocket.ko"
    if [ -d scenarios ] && ls scenarios/*.ngs >/dev/null 2>&1; then
        for cpus in 1 4; do
            step "harness: scenarios on $cpus CPU(s)" "$CARGO" run --quiet -p ngharness -- \
                run --cpus "$cpus" --ko "$BUILD/ng_socket.ko" --ko "$BUILD/ng_ksocket.ko" \
                scenarios/*.ngs
        done
    fi
    step "harness: reference mode on a fake FreeBSD tree" sh scripts/test-reference.sh
    # The data-path budgets: instructions per packet at most FreeBSD's own
    # modules' (callgrind counts, deterministic), no payload copy, the
    # allocation budgets (`make bench` alone prints the whole report).
    step "bench: per-packet instructions within FreeBSD's, copies and allocations within budget" \
        env -u FREEBSD_SRC sh scripts/bench.sh
fi
if want race; then
    # Race scenarios, a bounded slice of seeds (`make race SEEDS=N` for more).
    step "race: scenarios under ${RACE_SEEDS:-150} seeded schedules each on 4 CPUs" \
        "$CARGO" run --quiet -p ngharness -- race --cpus 4 --seeds "${RACE_SEEDS:-150}" \
        --ko "$BUILD/ng_socket.ko" --ko "$BUILD/ng_ksocket.ko"
fi
if want bridge; then
    step "bridge: C programs through libngbridge.so and ngharness serve" sh scripts/bridge-test.sh
    if [ -d scenarios ] && ls scenarios/*.ngs >/dev/null 2>&1; then
        step "bridge: scenarios as a Linux process through libngbridge.so" "$CARGO" run --quiet \
            -p ngharness -- run --backend bridge --bridge-lib "$BUILD/libngbridge.so" \
            --ko "$BUILD/ng_socket.ko" --ko "$BUILD/ng_ksocket.ko" scenarios/*.ngs
    fi
fi
if want freebsd; then
    fb=${FREEBSD_USERLAND:-$BUILD/freebsd}
    if [ -n "${FREEBSD_SRC:-}" ]; then
        step "FreeBSD's netgraph userland built for Linux from $FREEBSD_SRC" \
            sh scripts/build-freebsd-userland.sh "$FREEBSD_SRC" "$fb"
    fi
    ngctl=${NGCTL:-$fb/ngctl}
    if [ -x "$ngctl" ] && [ -d scenarios ] && ls scenarios/*.ngs >/dev/null 2>&1; then
        step "bridge: scenarios with FreeBSD's ngctl ($ngctl)" "$CARGO" run --quiet -p ngharness -- \
            run --ngctl "$ngctl" --bridge-lib "$BUILD/libngbridge.so" \
            --ko "$BUILD/ng_socket.ko" --ko "$BUILD/ng_ksocket.ko" scenarios/*.ngs
    else
        echo "==> bridge: scenarios with FreeBSD's ngctl: skipped (no ngctl binary at $ngctl;" \
            "give FREEBSD_SRC=<FreeBSD source tree> or NGCTL=<ngctl built for Linux>, docs/bridge.md)"
    fi
    if [ -d "$fb/tests" ]; then
        step "bridge: FreeBSD's tests/sys/netgraph ($fb/tests)" sh scripts/freebsd-tests.sh "$fb/tests"
    else
        echo "==> bridge: FreeBSD's tests/sys/netgraph: skipped (not built: give FREEBSD_SRC=<FreeBSD" \
            "source tree>, docs/bridge.md)"
    fi
fi
if want vm; then
    step "vm-tests: translator, runtime and workflow unit tests" python3 -m unittest discover -s vm-tests/tests
    step "vm-tests (FreeBSD 15 VM)" sh vm-tests/run.sh "$BUILD/ng_ksocket.ko" "$BUILD/ng_socket.ko"
fi

[ -n "$failures" ] && echo "failed steps:$failures"
echo "test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
