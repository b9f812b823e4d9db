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

if ! "$CC" -std=gnu11 -O1 -g -Wall -Wextra -Werror -c -o "$out/bsdcompat.o" bridge/compat/bsdcompat.c; then
    echo "bridge: cannot build bridge/compat/bsdcompat.c"
    exit 1
fi
for src in bridge/tests/t_*.c; do
    t=$(basename "$src" .c)
    extra=""
    if [ "$t" = t_bsdcompat ]; then
        # Built as FreeBSD's own programs are (scripts/build-freebsd-userland.sh).
        extra="-include bridge/compat/bsdcompat.h -I bridge/compat $out/bsdcompat.o"
    fi
    # shellcheck disable=SC2086
    if ! "$CC" -std=gnu11 -O1 -g -Wall -Wextra -Werror -I "$BUILD/include" -o "$out/$t" "$src" $extra \
        -lpthread; then
        echo "bridge: cannot build $src"
        exit 1
    fi
done

# shellcheck source=scripts/serve-lib.sh
. "$top/scripts/serve-lib.sh"
sock=$(mktemp -u "${TMPDIR:-/tmp}/ngbridge-test.XXXXXX")
serve_start bridge "$sock" "$out/serve.log"

for src in bridge/tests/t_*.c; do
    t=$(basename "$src" .c)
    if LD_PRELOAD=$lib NGBRIDGE=$sock timeout 120 "$out/$t"; then
        passed=$((passed + 1))
    else
        echo "bridge: $t FAILED"
        failed=$((failed + 1))
    fi
done

if serve_stop bridge "$out/serve.log"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi
echo "bridge: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
