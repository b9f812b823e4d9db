#!/bin/sh
# Runs FreeBSD's own tests/sys/netgraph ATF test programs, built for Linux
# by scripts/build-freebsd-userland.sh, against the modules through the
# bridge (docs/bridge.md): one `ngharness serve` on both modules, every
# test case of every program in TESTDIR with LD_PRELOAD=libngbridge.so,
# then the server's end-of-run report, which must be clean. Among them,
# ksocket's udp_connect and udp_bind (docs/ksocket.md:K25).
#
# A test case passes when ATF reports it passed or failed as expected
# (expected_failure: the test's own known limits, e.g. a full queue).
# Test cases that need node types the harness does not have (hub, bridge,
# vlan_rotate) are listed as skipped, with the type.
#
# usage: scripts/freebsd-tests.sh TESTDIR
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
cd "$top" || exit 1
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: scripts/freebsd-tests.sh TESTDIR" >&2
    exit 2
fi
dir=$(cd "$1" && pwd)
BUILD=${BUILD:-build}
lib=$(cd "$BUILD" && pwd)/libngbridge.so
work=$(mktemp -d "${TMPDIR:-/tmp}/ngfbsd-tests.XXXXXX")
passed=0
failed=0
skipped=0

# The node type a test case needs that the harness lacks (empty: none).
needs() { # PROGRAM CASE
    case $1:$2 in
        basic:node | basic:message | basic:same_name | hub:*) echo ng_hub ;;
        bridge:*) echo ng_bridge ;;
        vlan_rotate:*) echo ng_vlan_rotate ;;
    esac
}

# shellcheck source=scripts/serve-lib.sh
. "$top/scripts/serve-lib.sh"
sock=$work/ng.sock
serve_start freebsd-tests "$sock" "$work/serve.log"

for prog in "$dir"/*; do
    if [ ! -f "$prog" ] || [ ! -x "$prog" ]; then
        continue
    fi
    p=$(basename "$prog")
    for c in $("$prog" -l 2>/dev/null | sed -n 's/^ident: //p'); do
        n=$(needs "$p" "$c")
        if [ -n "$n" ]; then
            echo "SKIP $p:$c (needs node type ${n#ng_}, module $n, not in the harness)"
            skipped=$((skipped + 1))
            continue
        fi
        rm -f "$work/result"
        (cd "$work" && LD_PRELOAD=$lib NGBRIDGE=$sock timeout 120 "$prog" -r "$work/result" "$c") \
            >"$work/$p.$c.log" 2>&1
        r=$(cat "$work/result" 2>/dev/null || echo "broken: no result (killed or timed out)")
        case $r in
            passed* | expected_failure*)
                echo "PASS $p:$c ($r)"
                passed=$((passed + 1))
                ;;
            skipped*)
                echo "SKIP $p:$c ($r)"
                skipped=$((skipped + 1))
                ;;
            *)
                echo "FAIL $p:$c: $r"
                tail -n 20 "$work/$p.$c.log" | sed 's/^/    /'
                failed=$((failed + 1))
                ;;
        esac
    done
done

serve_stop freebsd-tests "$work/serve.log" || failed=$((failed + 1))
rm -rf "$work"
echo "freebsd-tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
