# Sourced by the build and test scripts: pins Debian's Rust toolchain (not
# rustup's) and the FreeBSD header sysroot.
if [ "$(uname -s)" != FreeBSD ]; then
    PATH=/usr/bin:/usr/lib/llvm-19/bin:$PATH
    export PATH
    RUSTC=${RUSTC:-/usr/bin/rustc}
    CARGO=${CARGO:-/usr/bin/cargo}
else
    RUSTC=${RUSTC:-rustc}
    CARGO=${CARGO:-cargo}
fi
export RUSTC CARGO
export RUSTC_BOOTSTRAP=1
if [ -z "${FREEBSD_SYSDIR:-}" ] && [ -z "${FREEBSD_SYSROOT:-}" ]; then
    FREEBSD_SYSROOT=${XDG_CACHE_HOME:-$HOME/.cache}/ngsock/freebsd-15.0-sysroot
    export FREEBSD_SYSROOT
fi
KTARGET=x86_64-unknown-none
export KTARGET
