#!/bin/sh
# `make demo`: see ngsock work without FreeBSD. Loads both modules into the
# host kernel harness, builds the UDP echo server of ng_ksocket(4) (an echo
# node <-> a ksocket bound to 127.0.0.1:7777) with ngctl commands, talks to
# it with a real UDP client on loopback, then shuts everything down,
# unloads the modules and checks for leaks, printing each step.
#
# usage: scripts/demo.sh [--port N] [--count N]     (--port 0: any free port)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
cd "$top"
BUILD=${BUILD:-build}

for m in socket ksocket; do
    [ -f "$BUILD/ng_$m.ko" ] || sh scripts/build-ko.sh "$m" "ng_$m" "$BUILD/ng_$m.ko"
done
echo "demo: building the harness (cargo build -p ngharness)" >&2
"$CARGO" build --quiet -p ngharness
bin=${CARGO_TARGET_DIR:-$top/target}/debug/ngharness
exec "$bin" demo "$@" "$BUILD/ng_socket.ko" "$BUILD/ng_ksocket.ko"
