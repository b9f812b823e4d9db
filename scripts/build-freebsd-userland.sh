#!/bin/sh
# Builds FreeBSD's own netgraph userland for Linux, to run against the
# modules through the bridge (docs/bridge.md, "FreeBSD's own programs"),
# from a FreeBSD 15 source tree SRC, which is only read (nothing of it
# enters this repository):
#
#   OUT/libnetgraph.a     SRC/lib/libnetgraph/{sock,msg,debug}.c
#   OUT/ngctl             SRC/usr.sbin/ngctl (as FreeBSD builds it: with
#                         libedit and jail support; the jail calls are those
#                         of a host without jails, bridge/compat/jail.h)
#   OUT/tests/NAME        SRC/tests/sys/netgraph/NAME.c with util.c, ATF
#                         test programs (basic, socket, ksocket, hub, bridge,
#                         vlan_rotate: those present and compilable for Linux;
#                         FreeBSD's ksocket.c is not, see docs/bridge.md)
#
# Each is compiled against build/include (make) with bridge/compat/
# bsdcompat.h, which gives them BSD getopt(3), FreeBSD's strerror texts and
# getprogname(3). Needs a C compiler, libedit (libedit-dev) and, for the
# tests, atf-c (libatf-dev).
#
# usage: scripts/build-freebsd-userland.sh SRC [OUT]   (OUT: build/freebsd)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
die() {
    echo "build-freebsd-userland: $*" >&2
    exit 1
}
[ $# -ge 1 ] || die "usage: scripts/build-freebsd-userland.sh FREEBSD_SRC [OUT]"
src=$(cd "$1" && pwd) || die "no directory $1"
out=${2:-$top/build/freebsd}
CC=${CC:-cc}
inc=$top/build/include
[ -f "$inc/netgraph/ng_message.h" ] || die "no $inc: run make first"
lng=$src/lib/libnetgraph
[ -f "$lng/sock.c" ] || die "$src has no lib/libnetgraph/sock.c: not a FreeBSD source tree"
mkdir -p "$out/obj" "$out/tests"

cflags="-O1 -g -w -include $top/bridge/compat/bsdcompat.h -I$top/bridge/compat -I$inc -I$lng"
cc1() { # OBJ SRC [FLAGS...]
    o=$1 s=$2
    shift 2
    # shellcheck disable=SC2086
    $CC $cflags "$@" -c -o "$o" "$s" || die "cannot compile $s"
}

$CC -O1 -g -Wall -c -o "$out/obj/bsdcompat.o" "$top/bridge/compat/bsdcompat.c" ||
    die "cannot compile bridge/compat/bsdcompat.c"
for f in sock msg debug; do
    cc1 "$out/obj/ng_$f.o" "$lng/$f.c"
done
rm -f "$out/libnetgraph.a"
ar rcs "$out/libnetgraph.a" "$out/obj/ng_sock.o" "$out/obj/ng_msg.o" "$out/obj/ng_debug.o" \
    "$out/obj/bsdcompat.o"
echo "build-freebsd-userland: $out/libnetgraph.a"

ngc=$src/usr.sbin/ngctl
if [ -f "$ngc/main.c" ]; then
    printf '#include <histedit.h>\n' | $CC -E -x c - >/dev/null 2>&1 ||
        die "ngctl needs libedit's <histedit.h> (Debian: apt-get install libedit-dev)"
    objs=""
    # usr.sbin/ngctl/Makefile's SRCS.
    for f in main mkpeer config connect dot name show list msg debug shutdown rmhook \
        status types write; do
        cc1 "$out/obj/ngctl_$f.o" "$ngc/$f.c" -DEDITLINE -DJAIL
        objs="$objs $out/obj/ngctl_$f.o"
    done
    # shellcheck disable=SC2086
    $CC -o "$out/ngctl" $objs "$out/libnetgraph.a" -ledit -lpthread || die "cannot link ngctl"
    echo "build-freebsd-userland: $out/ngctl"
fi

tst=$src/tests/sys/netgraph
if [ -f "$tst/util.c" ]; then
    if ! printf '#include <atf-c.h>\n' | $CC -E -x c - >/dev/null 2>&1; then
        echo "build-freebsd-userland: tests/sys/netgraph skipped: no <atf-c.h> (Debian: apt-get install libatf-dev)" >&2
        exit 0
    fi
    cc1 "$out/obj/t_util.o" "$tst/util.c"
    for t in basic socket ksocket hub bridge vlan_rotate; do
        [ -f "$tst/$t.c" ] || continue
        # shellcheck disable=SC2086
        if ! $CC $cflags -c -o "$out/obj/t_$t.o" "$tst/$t.c" 2>"$out/obj/t_$t.err"; then
            # ksocket.c hands the host socket's struct sockaddr to ng_ksocket
            # unchanged: FreeBSD's layout (sin_len), which Linux's is not.
            echo "build-freebsd-userland: tests/sys/netgraph/$t.c does not compile for Linux" \
                "($(grep -m1 error "$out/obj/t_$t.err"))" >&2
            rm -f "$out/tests/$t"
            continue
        fi
        $CC -o "$out/tests/$t" "$out/obj/t_$t.o" "$out/obj/t_util.o" "$out/libnetgraph.a" \
            -latf-c || die "cannot link $t"
        echo "build-freebsd-userland: $out/tests/$t"
    done
fi
