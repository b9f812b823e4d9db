#!/bin/sh
# The bridge's own tests (docs/bridge.md): builds the C programs of
# bridge/tests against build/include, starts `ngharness serve` on both
# modules, runs each program with LD_PRELOAD=build/libngbridge.so, then
# stops the server (SIGTERM) and requires its end-of-run report to be
# clean: every socket closed, no leak, no violation.
#
# usage: scripts/bridge-test.sh
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
cd "$top"
BUILD=${BUILD:-build}
CC=${CC:-clang}
command -v "$CC" >/dev/null 2>&1 || CC=cc
out=$BUILD/bridge-tests
mkdir -p "$out"
lib=$(cd "$BUILD" && pwd)/libngbridge.so
passed=0
failed=0

for src in bridge/tests/t_*.c; do
    t=$(basename "$src" .c)
    if ! "$CC" -std=gnu11 -O1 -g -Wall -Wextra -Werror -I "$BUILD/include" -o "$out/$t" "$src" -lpthread; then
        echo "bridge: cannot build $src"
        exit 1
    fi
done

"$CARGO" build --quiet -p ngharness || exit 1
bin=target/debug/ngharness
sock=$(mktemp -u "${TMPDIR:-/tmp}/ngbridge-test.XXXXXX")
rm -f "$out/serve.log"
: >"$out/serve.log"
"$bin" serve --ko "$BUILD/ng_socket.ko" --ko "$BUILD/ng_ksocket.ko" --listen "$sock" >"$out/serve.log" 2>&1 &
spid=$!
i=0
until grep -q '^ngharness serve: ready' "$out/serve.log" 2>/dev/null && [ -S "$sock" ]; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$spid" 2>/dev/null; then
        echo "bridge: ngharness serve did not start:"
        cat "$out/serve.log"
        kill "$spid" 2>/dev/null
        exit 1
    fi
    sleep 0.1
done

for src in bridge/tests/t_*.c; do
    t=$(basename "$src" .c)
    if LD_PRELOAD=$lib NGBRIDGE=$sock timeout 120 "$out/$t"; then
        passed=$((passed + 1))
    else
        echo "bridge: $t FAILED"
        failed=$((failed + 1))
    fi
done

kill -TERM "$spid"
wait "$spid"
st=$?
if [ $st -ne 0 ] || ! grep -q '^violations: none' "$out/serve.log"; then
    echo "bridge: ngharness serve ended with status $st:"
    cat "$out/serve.log"
    failed=$((failed + 1))
else
    passed=$((passed + 1))
    grep '^ngharness serve: .* served' "$out/serve.log"
fi
echo "bridge: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
