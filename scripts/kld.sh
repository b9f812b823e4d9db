#!/bin/sh
# make load / make unload / make install's notes on FreeBSD (BSDmakefile).
#
#   sh scripts/kld.sh load NG_SOCKET.ko NG_KSOCKET.ko
#   sh scripts/kld.sh unload
#   sh scripts/kld.sh notes KMODDIR
#
# load: kldload the built modules, ng_socket first, unless they are already
# loaded from these files. It refuses, before loading anything, when
# FreeBSD's own module of the same name (or another file of that name) is
# loaded: the kernel would keep using that one.
# unload: kldunload ours (not FreeBSD's), ng_ksocket first.
# notes: what makes the kernel load ours rather than FreeBSD's.
set -u
PATH=/sbin:/bin:/usr/sbin:/usr/bin:$PATH

say() { echo "ngsock: $*"; }
fail() {
    echo "ngsock: $*" >&2
    exit 1
}

# Path of the loaded file NAME.ko (empty when none is loaded).
kldpath() {
    kldstat -v 2> /dev/null | sed -n "s/^ *[0-9][0-9]* .* $1\\.ko (\\(.*\\))\$/\\1/p" | head -n 1
}

# FreeBSD's own modules live in /boot/kernel (or a saved kernel.* beside it).
is_freebsds() {
    case $1 in
        /boot/kernel/* | /boot/kernel.*/*) return 0 ;;
    esac
    return 1
}

refuse() { # MODULE PATH
    if is_freebsds "$2"; then
        if [ "$1" = ng_socket ]; then
            how="FreeBSD's ng_socket cannot be unloaded: reboot, and keep it from loading first (see make install's notes: kld_list or loader.conf)"
        else
            how="unload it first: kldunload $1"
        fi
        fail "make load: FreeBSD's own $1.ko is loaded ($2), so the kernel would keep using it; $how"
    fi
    fail "make load: another $1.ko is loaded ($2); unload it first: kldunload $1"
}

load() { # NG_SOCKET.ko NG_KSOCKET.ko
    so=$1
    ks=$2
    for f in "$so" "$ks"; do
        [ -f "$f" ] || fail "make load: $f is not built (run make first)"
    done
    # Check both before loading either.
    for m in ng_socket ng_ksocket; do
        if [ "$m" = ng_socket ]; then f=$so; else f=$ks; fi
        p=$(kldpath "$m")
        if [ -n "$p" ] && [ "$p" != "$f" ]; then
            refuse "$m" "$p"
        fi
        if [ -z "$p" ] && kldstat -q -m "$m" 2> /dev/null; then
            fail "make load: module $m is compiled into the running kernel: ours cannot replace it"
        fi
    done
    for m in ng_socket ng_ksocket; do
        if [ "$m" = ng_socket ]; then f=$so; else f=$ks; fi
        if [ -n "$(kldpath "$m")" ]; then
            say "$m.ko is already loaded from $f"
        else
            kldload -v "$f" || fail "make load: kldload $f failed"
            [ "$(kldpath "$m")" = "$f" ] || fail "make load: $m.ko is not loaded from $f after kldload"
        fi
    done
}

unload() {
    for m in ng_ksocket ng_socket; do
        p=$(kldpath "$m")
        if [ -z "$p" ]; then
            continue
        fi
        if is_freebsds "$p"; then
            say "$m.ko is FreeBSD's ($p), not ours: left loaded"
            continue
        fi
        if [ "$m" = ng_socket ]; then
            # Ours, like FreeBSD's, refuses to unload unless asked to.
            sysctl net.graph.socket.allow_unload=1 > /dev/null ||
                fail "make unload: cannot set net.graph.socket.allow_unload"
        fi
        kldunload -v "$m" || fail "make unload: kldunload $m failed"
    done
}

notes() { # KMODDIR
    d=$1
    cat << NOTES
ngsock: installed $d/ng_socket.ko and $d/ng_ksocket.ko.
FreeBSD's modules of the same names in /boot/kernel come first in the
module path: kldload ng_socket, libnetgraph and ngctl mkpeer would load
those. Load ours by path before anything loads FreeBSD's, either at boot
from /etc/rc.conf:

    sysrc kld_list+="$d/ng_socket.ko $d/ng_ksocket.ko"

or from the boot loader, in /boot/loader.conf:

    ng_socket_load="YES"
    ng_socket_name="$d/ng_socket.ko"
    ng_ksocket_load="YES"
    ng_ksocket_name="$d/ng_ksocket.ko"

Now, if FreeBSD's are not loaded yet: kldload $d/ng_socket.ko $d/ng_ksocket.ko
NOTES
}

case ${1:-} in
    load)
        [ $# -eq 3 ] || fail "usage: sh scripts/kld.sh load NG_SOCKET.ko NG_KSOCKET.ko"
        load "$2" "$3"
        ;;
    unload) unload ;;
    notes)
        [ $# -eq 2 ] || fail "usage: sh scripts/kld.sh notes KMODDIR"
        notes "$2"
        ;;
    *) fail "usage: sh scripts/kld.sh load NG_SOCKET.ko NG_KSOCKET.ko | unload | notes KMODDIR" ;;
esac
