#!/bin/sh
# Reference mode: builds FreeBSD's own netgraph modules, sys/netgraph/
# ng_ksocket.c and ng_socket.c of a FreeBSD source tree, with the project's
# toolchain, for `make bench FREEBSD_SRC=...` and `make harness
# FREEBSD_SRC=...`. Nothing of the tree enters the repository: the objects
# go to OUTDIR (default build/ref).
#
# usage: scripts/build-ref.sh FREEBSD_SRC [OUTDIR]
#
# The C flags are the kernel module flags of kmod/kernel-cflags (those our
# own C glue is built with) without -Werror (FreeBSD's code is not ours to
# fix); headers come from the FreeBSD 15 sysroot first (the ABI the harness
# models), then from the tree itself for what the sysroot lacks (e.g.
# sys/contrib/ck). Linked as bsd.kmod.mk links (`ld -r`, globals made
# local except EXPORT_SYMS of kmod/<module>/Makefile, debug info stripped),
# then checked by the kernel-linker gate in --foreign mode (the kernel's
# rules only, not the project's policies for its own modules).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
src=${1:?usage: scripts/build-ref.sh FREEBSD_SRC [OUTDIR]}
out=${2:-$top/${BUILD:-build}/ref}
case $src in /*) ;; *) src=$(pwd)/$src ;; esac
cd "$top"

CC=${CC_KERNEL:-clang-19}
LD=${LD:-ld.lld-19}
NM=${NM:-llvm-nm-19}
OBJCOPY=${OBJCOPY:-objcopy}
command -v "$CC" >/dev/null 2>&1 || CC=clang
command -v "$LD" >/dev/null 2>&1 || LD=ld.lld
command -v "$NM" >/dev/null 2>&1 || NM=llvm-nm

sysroot=${FREEBSD_SYSROOT:-}
if [ -n "${FREEBSD_SYSDIR:-}" ]; then
    inc="-isystem $FREEBSD_SYSDIR"
elif [ -n "$sysroot" ] && [ -d "$sysroot/include" ]; then
    inc="-isystem $sysroot/include"
else
    echo "build-ref: no FreeBSD header sysroot (run make once: scripts/bootstrap.sh fetches it)" >&2
    exit 1
fi
for m in ng_ksocket ng_socket; do
    [ -f "$src/sys/netgraph/$m.c" ] || {
        echo "build-ref: $src/sys/netgraph/$m.c not found (FREEBSD_SRC must be a FreeBSD source tree)" >&2
        exit 1
    }
done

# One flag per line, `#` comments, `[group]` headers; -Werror dropped.
flags=$(sed -e 's/#.*//' -e '/^[[:space:]]*\[/d' -e '/^[[:space:]]*-Werror[[:space:]]*$/d' \
        kmod/kernel-cflags | tr '\n' ' ')

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for m in ng_ksocket ng_socket; do
    # shellcheck disable=SC2086 # word splitting of the flag lists is wanted
    "$CC" $flags -Wno-pointer-sign -Wno-unused-variable -Wno-unused-but-set-variable \
        -I "$top/kmod/include" $inc \
        -idirafter "$src/sys" -idirafter "$src/sys/contrib/ck/include" \
        -c "$src/sys/netgraph/$m.c" -o "$work/$m.o"
    "$LD" -r -d -o "$work/$m.ko.full" "$work/$m.o"
    sh "$top/scripts/export-syms.sh" "$m" > "$work/exports.txt"
    "$NM" -g --defined-only "$work/$m.ko.full" | awk '{print $3}' > "$work/globals.txt"
    if [ -s "$work/exports.txt" ]; then
        grep -vxF -f "$work/exports.txt" "$work/globals.txt" > "$work/localize.txt" || true
    else
        cp "$work/globals.txt" "$work/localize.txt"
    fi
    # (GNU objcopy fails, silently, on an empty list: nothing to localize.)
    loc=
    [ -s "$work/localize.txt" ] && loc=--localize-symbols="$work/localize.txt"
    "$OBJCOPY" $loc --strip-debug \
        -R .llvm_addrsig -R .comment -R .note.GNU-stack "$work/$m.ko.full" "$out/$m.ko"
    echo "build-ref: wrote $out/$m.ko ($(wc -c < "$out/$m.ko") bytes) from $src/sys/netgraph/$m.c" >&2
done

# KOGATE: a kogate binary to use (else it is built).
gate=${KOGATE:-}
if [ -z "$gate" ]; then
    "$CARGO" build --quiet --release -p kogate
    gate=${CARGO_TARGET_DIR:-$top/target}/release/kogate
fi
"$gate" --foreign "$out/ng_ksocket.ko" "$out/ng_socket.ko" >/dev/null
