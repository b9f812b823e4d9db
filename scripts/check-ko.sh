#!/bin/sh
# Checks on the built modules that the kernel-linker gate does not make:
#
# * the symbols each module keeps global are exactly EXPORT_SYMS of its BSD
#   makefile (scripts/export-syms.sh), as the FreeBSD build's kmod.mk makes
#   them: both builds export the same symbols;
# * no path of the build machine is in a module: not the checkout's (it is
#   "ngsock/..." wherever the checkout is), the home directory's, the Rust
#   library sources' or the cargo registry's;
# * the shipped module carries no SanitizerCoverage instrumentation (only
#   the harness's fuzz and cov flavours do, built elsewhere).
#
# usage: scripts/check-ko.sh MODULE.ko...
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/env.sh
. "$top/scripts/env.sh"
NM=${NM:-llvm-nm-19}
command -v "$NM" > /dev/null 2>&1 || NM=llvm-nm
command -v "$NM" > /dev/null 2>&1 || NM="nm"
bad=0
sysroot=$("${RUSTC:-rustc}" --print sysroot 2> /dev/null || true)
for ko in "$@"; do
    m=$(basename "$ko" .ko)
    want=$(sh "$top/scripts/export-syms.sh" "$m" | sort | tr '\n' ' ')
    got=$("$NM" -g --defined-only "$ko" | awk '{print $3}' | sort | tr '\n' ' ')
    if [ "$want" != "$got" ]; then
        echo "check-ko: $ko: global symbols [ $got] differ from EXPORT_SYMS of kmod/$m/Makefile [ $want]"
        bad=1
    else
        echo "check-ko: $ko: global symbols [ $got] = EXPORT_SYMS"
    fi
    if "$NM" "$ko" | grep -q -e __sanitizer_cov -e __sancov; then
        echo "check-ko: $ko: SanitizerCoverage instrumentation in a shipped module"
        bad=1
    fi
    for p in "$top" "${HOME:-}" "${CARGO_HOME:-$HOME/.cargo}" "$sysroot/lib/rustlib" \
        "${FREEBSD_SYSROOT:-}" "${FREEBSD_SYSDIR:-}"; do
        case $p in "" | / | /lib/rustlib) continue ;; esac
        n=$(grep -a -c -F -e "$p" "$ko")
        if [ "$n" -ne 0 ]; then
            echo "check-ko: $ko: contains the build machine's path $p:"
            grep -a -o -F -e "$p" "$ko" | head -n 3 | sed 's/^/    /'
            bad=1
        fi
    done
done
[ "$bad" -eq 0 ] && echo "check-ko: no build-machine paths in: $*"
exit "$bad"
