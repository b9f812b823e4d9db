#!/bin/sh
# The FreeBSD build's prerequisites (kmod/rust.mk runs this before cargo):
# checks them, each failure one clear line naming the fix, and prints the
# libclang directory bindgen is to use (LIBCLANG_PATH).
#
#   pkg install rust llvm19
#
# * cargo and rustc (pkg rust), with the Rust library sources that
#   -Zbuild-std compiles for the kernel target (the rust package's SOURCES);
# * libclang, which bindgen loads at build time to read the kernel headers:
#   FreeBSD's base system has none, the llvm packages do
#   (/usr/local/llvm<N>/lib/libclang.so). LIBCLANG_PATH, when set, wins;
#   otherwise the newest installed llvm package's is taken;
# * the kernel sources the layouts come from (SYSDIR, /usr/src/sys).
#
# usage: scripts/freebsd-prereq.sh SYSDIR [CARGO]
# (NGSOCK_LLVM_PREFIX, default /usr/local, is where the llvm packages are:
# for the tests.)
set -u
sysdir=${1:-/usr/src/sys}
cargo=${2:-cargo}
prefix=${NGSOCK_LLVM_PREFIX:-/usr/local}
LLVM_PKG=llvm19

fail() {
    echo "ngsock: $*" >&2
    exit 1
}

command -v "$cargo" > /dev/null 2>&1 ||
    fail "$cargo not found: the build needs Rust (pkg install rust $LLVM_PKG)"
command -v "${RUSTC:-rustc}" > /dev/null 2>&1 ||
    fail "rustc not found: the build needs Rust (pkg install rust $LLVM_PKG)"
sysroot=$("${RUSTC:-rustc}" --print sysroot 2> /dev/null) ||
    fail "rustc --print sysroot failed: is the rust package complete? (pkg install -f rust)"
[ -f "$sysroot/lib/rustlib/src/rust/library/core/src/lib.rs" ] ||
    fail "no Rust library sources in $sysroot/lib/rustlib/src (needed by -Zbuild-std): install the rust package built with its SOURCES option (the default)"
if [ ! -f "$sysdir/sys/param.h" ] || [ ! -f "$sysdir/netgraph/netgraph.h" ]; then
    fail "no kernel sources in $sysdir: install the release's src.txz (or set SYSDIR=/path/to/sys)"
fi

# libclang: LIBCLANG_PATH (a directory, or the library file), else the
# newest /usr/local/llvm<N>/lib with a libclang.
if [ -n "${LIBCLANG_PATH:-}" ]; then
    if [ -f "$LIBCLANG_PATH" ]; then
        dirname "$LIBCLANG_PATH"
        exit 0
    fi
    for f in "$LIBCLANG_PATH"/libclang.so* "$LIBCLANG_PATH"/libclang-*.so*; do
        if [ -f "$f" ]; then
            echo "$LIBCLANG_PATH"
            exit 0
        fi
    done
    fail "LIBCLANG_PATH=$LIBCLANG_PATH holds no libclang.so: pkg install $LLVM_PKG, or unset LIBCLANG_PATH"
fi
best=""
bestv=-1
for f in "$prefix"/llvm[0-9]*/lib/libclang.so*; do
    [ -f "$f" ] || continue
    d=$(dirname "$f")
    v=$(basename "$(dirname "$d")" | sed -n 's|^llvm\([0-9][0-9]*\)$|\1|p')
    [ -n "$v" ] || continue
    if [ "$v" -gt "$bestv" ]; then
        best=$d
        bestv=$v
    fi
done
[ -n "$best" ] ||
    fail "bindgen needs libclang, which FreeBSD's base system lacks: pkg install $LLVM_PKG (or set LIBCLANG_PATH)"
echo "$best"
