#!/bin/sh
# `make bench`: the data-path benchmark (not a timed test; `make test` runs
# it too, for its budgets). UDP through a socket node (ng_socket.ko, PF_NETGRAPH data
# socket) <-> ksocket (ng_ksocket.ko, inet/dgram/udp on 127.0.0.1) <-> a Linux
# UDP socket, both ways, connected and unconnected, in the host kernel
# harness. It reports, per packet:
#   * payload copies and allocations made by module code (native run, with
#     the kernel model's probes; harness socket-layer costs are listed apart);
#   * instructions executed inside each module image (a second run of the
#     bench under valgrind's callgrind).
# and exits non-zero if a budget is exceeded: 0 payload copies; 0 allocations
# per packet on the connected paths, at most 1 (the address tag) per
# unconnected datagram; per row (ng_ksocket send, receive connected and
# unconnected, the echo round trip; ng_socket send and receive), at most
# FreeBSD's own module's instructions per packet. It also reports an end-to-
# end figure (round trips per second, instructions per round trip in the
# whole harness process) for the data socket -> UDP -> data socket path,
# and the local-address path of ng_ksocket (IP_RECVDSTADDR on: receive and
# echo, whose allocations are budgeted, 2 per datagram, the address and
# local-address tags, none for the answer; instructions are information,
# FreeBSD has no such path).
#
# FreeBSD's figures are those the bench measured for FreeBSD 15-CURRENT's
# ng_ksocket.c and ng_socket.c; with FREEBSD_SRC=/path/to/freebsd/src
# (`make bench FREEBSD_SRC=...`) those two files are built from that tree
# (scripts/build-ref.sh, into build/ref), measured in the same run and
# printed side by side, and their figures are the budgets.
#
# usage: scripts/bench.sh [ngharness bench options, e.g. -n 5000 --size 1400]
# NGSOCK_BENCH_PROFILE=release builds the harness optimized (the module
# numbers do not depend on it; the callgrind run gets faster).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
cd "$top"
BUILD=${BUILD:-build}

for m in socket ksocket; do
    [ -f "$BUILD/ng_$m.ko" ] || sh scripts/build-ko.sh "$m" "ng_$m" "$BUILD/ng_$m.ko"
done
if ! command -v valgrind >/dev/null 2>&1; then
    echo "bench: valgrind is needed for the instruction counts (apt-get install valgrind)" >&2
    exit 1
fi

profile=${NGSOCK_BENCH_PROFILE:-dev}
case $profile in
dev) dir=debug ;;
*) dir=$profile ;;
esac
echo "bench: building the harness (cargo build -p ngharness --profile $profile)" >&2
"$CARGO" build --quiet -p ngharness --profile "$profile"
bin=${CARGO_TARGET_DIR:-$top/target}/$dir/ngharness
ref=
if [ -n "${FREEBSD_SRC:-}" ]; then
    sh scripts/build-ref.sh "$FREEBSD_SRC" "$BUILD/ref"
    ref="--reference $BUILD/ref"
fi
# shellcheck disable=SC2086 # $ref is two words or none
exec "$bin" bench --callgrind $ref "$@" "$BUILD/ng_socket.ko" "$BUILD/ng_ksocket.ko"
