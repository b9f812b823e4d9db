#!/bin/sh
# `make bench`: the data-path benchmark (not a timed test; not part of
# `make test`). UDP through a socket node (ng_socket.ko, PF_NETGRAPH data
# socket) <-> ksocket (ng_ksocket.ko, inet/dgram/udp on 127.0.0.1) <-> a Linux
# UDP socket, both ways, connected and unconnected, in the host kernel
# harness. It reports, per packet:
#   * payload copies and allocations made by module code (native run, with
#     the kernel model's probes; harness socket-layer costs are listed apart);
#   * instructions executed inside each module image (a second run of the
#     bench under valgrind's callgrind).
# and exits non-zero if a budget is exceeded: 0 payload copies; 0 allocations
# per packet on the connected paths, at most 1 (the address tag) per
# unconnected datagram; ng_ksocket.ko under 300 instructions per packet on
# the send path and 500 on the receive path. Two more rows measure the
# local-address path (IP_RECVDSTADDR on): 2 allocations per received
# datagram (the address and local-address tags), none more for an answer
# sent from the tag's address, and 600 instructions on the receive path.
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
exec "$bin" bench --callgrind "$@" "$BUILD/ng_socket.ko" "$BUILD/ng_ksocket.ko"
