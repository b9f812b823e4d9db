#!/bin/sh
# The reference mode's own test (a step of `make test`), on a fake FreeBSD
# source tree (harness/tests/fixtures/fakesrc: two small node types of this
# project where scripts/build-ref.sh looks for FreeBSD's ng_ksocket.c and
# ng_socket.c): they build with the kernel flags, the kernel-linker gate
# refuses them as ours (no MODULE_VERSION) and accepts them with
# --foreign, the harness loads them, and `ngharness run --reference`
# tells the scenario that behaves the same, the documented deviations (one
# at a command, one in what the module leaves behind), and the undocumented
# and the misdocumented differences apart (exit status 1).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
cd "$top"
out=${BUILD:-build}/ref-fixture
fix=harness/tests/fixtures
gate=${CARGO_TARGET_DIR:-$top/target}/release/kogate
"$CARGO" build --quiet --release -p kogate
"$CARGO" build --quiet -p ngharness
bin=${CARGO_TARGET_DIR:-$top/target}/debug/ngharness
fail() { echo "test-reference: $*" >&2; exit 1; }

KOGATE=$gate sh scripts/build-ref.sh "$fix/fakesrc" "$out"
if "$gate" "$out/ng_ksocket.ko" >/dev/null 2>&1; then
    fail "the gate accepted a module without MODULE_VERSION as ours"
fi
"$gate" --foreign "$out/ng_ksocket.ko" "$out/ng_socket.ko" >/dev/null \
    || fail "the gate refused the fixture modules in --foreign mode"
"$bin" load "$out/ng_socket.ko" "$out/ng_ksocket.ko" >/dev/null 2>&1 \
    || fail "the harness did not load and unload the fixture modules"

# Our modules pass every fixture scenario (they describe our behaviour).
"$bin" run --ko build/ng_socket.ko --ko build/ng_ksocket.ko "$fix"/reference/*.ngs >/dev/null \
    || fail "our modules fail a fixture scenario"

set +e
report=$("$bin" run --reference --man man --ko "$out/ng_socket.ko" --ko "$out/ng_ksocket.ko" \
    "$fix"/reference/*.ngs 2>&1)
status=$?
set -e
printf '%s\n' "$report"
[ "$status" -eq 1 ] || fail "exit status $status, expected 1 (undocumented differences)"
expect() {
    printf '%s\n' "$report" | grep -q -- "$1" || fail "no line matching: $1"
}
expect "^SAME $fix/reference/same.ngs\$"
expect "^SAME $fix/reference/documented.ngs (documented deviations: 1)\$"
expect "documented.ngs:8: ng_ksocket.4 \"The statistics messages\""
expect "^DIFFERS $fix/reference/undocumented.ngs:8: .*(not a documented deviation)\$"
expect "^DIFFERS $fix/reference/misdocumented.ngs:8: .*does not say \"getname answers in verse\""
expect "^SAME $fix/reference/leftbehind.ngs (documented deviations: 1)\$"
expect "leftbehind.ngs:9: ng_socket.4 \"FreeBSD keeps one reference to it until reboot\": end of scenario: "
expect "^reference: 1 same, 2 with documented deviations, 2 differ\$"
echo "test-reference: ok"
