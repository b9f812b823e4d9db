#!/bin/sh
# Bootstrap the build environment for ngsock on Debian 12 / Ubuntu.
#
# Installs (when missing) Debian's Rust 1.96 toolchain with its library sources
# (for -Zbuild-std), clang/lld/llvm 19 and libclang for bindgen, the tools
# `make test` uses (mandoc, valgrind, shellcheck, bmake for the BSD makefiles
# and the port, python3-venv for the workflow linter, curl and xz for the VM
# image scripts), and assembles the pinned FreeBSD 15.0 header sysroot from
# the ziglang 0.17.1 wheel.
#
# Prints the sysroot path on its last line of output when called with --print-sysroot.
set -eu

ZIG_VERSION=0.17.1
ZIG_WHEEL=ziglang-0.17.1-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.musllinux_1_1_x86_64.whl
ZIG_SHA256=ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54
CACHE=${NGSOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ngsock}
SYSROOT=${FREEBSD_SYSROOT:-$CACHE/freebsd-15.0-sysroot}

say() { printf 'bootstrap: %s\n' "$*" >&2; }

DEB_PKGS="rustc-web cargo-web rust-web-src libstd-rust-web-dev rust-web-clippy rustfmt-web clang-19 lld-19 libclang1-19 llvm-19 unzip mandoc python3 python3-venv valgrind shellcheck bmake curl xz-utils"

need_pkgs() {
    missing=""
    for p in $DEB_PKGS; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing="$missing $p"
        fi
    done
    echo "$missing"
}

install_toolchain() {
    if [ "$(uname -s)" = FreeBSD ]; then
        say "FreeBSD host: using the system's Rust and /usr/src/sys (nothing to install)"
        return
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian/Ubuntu system: install Rust 1.96 with rust-src, clang/lld 19, libclang 19 by hand"
        return
    fi
    missing=$(need_pkgs)
    if [ -z "$missing" ]; then
        say "toolchain packages present"
        return
    fi
    say "installing Debian packages:$missing"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
}

make_sysroot() {
    if [ "$(uname -s)" = FreeBSD ]; then
        return
    fi
    if [ -f "$SYSROOT/.ngsock-stamp" ] && [ "$(cat "$SYSROOT/.ngsock-stamp")" = "$ZIG_SHA256" ]; then
        say "FreeBSD 15.0 headers cached in $SYSROOT"
        return
    fi
    say "assembling FreeBSD 15.0 header sysroot in $SYSROOT (from PyPI ziglang==$ZIG_VERSION)"
    mkdir -p "$CACHE"
    dl="$CACHE/dl"
    mkdir -p "$dl"
    if [ ! -f "$dl/$ZIG_WHEEL" ] || [ "$(sha256sum "$dl/$ZIG_WHEEL" | cut -d' ' -f1)" != "$ZIG_SHA256" ]; then
        rm -f "$dl/$ZIG_WHEEL"
        py=python3
        command -v python3 >/dev/null 2>&1 || { say "python3 with pip is needed to fetch the headers"; exit 1; }
        $py -m pip download --quiet --no-deps "ziglang==$ZIG_VERSION" --only-binary=:all: \
            --platform manylinux2010_x86_64 -d "$dl" >&2
    fi
    got=$(sha256sum "$dl/$ZIG_WHEEL" | cut -d' ' -f1)
    if [ "$got" != "$ZIG_SHA256" ]; then
        say "checksum mismatch for $ZIG_WHEEL: got $got, want $ZIG_SHA256"
        exit 1
    fi
    tmp=$(mktemp -d "$CACHE/unz.XXXXXX")
    unzip -q "$dl/$ZIG_WHEEL" 'ziglang/lib/libc/include/generic-freebsd/*' \
        'ziglang/lib/libc/include/x86_64-freebsd-none/*' -d "$tmp"
    rm -rf "$SYSROOT.new"
    mkdir -p "$SYSROOT.new/include"
    cp -a "$tmp/ziglang/lib/libc/include/generic-freebsd/." "$SYSROOT.new/include/"
    cp -a "$tmp/ziglang/lib/libc/include/x86_64-freebsd-none/." "$SYSROOT.new/include/"
    rm -rf "$tmp"
    echo "$ZIG_SHA256" > "$SYSROOT.new/.ngsock-stamp"
    rm -rf "$SYSROOT"
    mv "$SYSROOT.new" "$SYSROOT"
    say "sysroot ready: $(find "$SYSROOT/include" -type f | wc -l) header files"
}

case "${1:-}" in
    --print-sysroot) make_sysroot; echo "$SYSROOT" ;;
    --toolchain) install_toolchain ;;
    *) install_toolchain; make_sysroot; echo "$SYSROOT" ;;
esac
