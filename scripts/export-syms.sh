#!/bin/sh
# Prints the symbols a module keeps global, one per line: EXPORT_SYMS of its
# BSD makefile (kmod/<module>/Makefile), which bsd.kmod.mk uses on FreeBSD
# and scripts/build-ko.sh here, so that both builds export the same symbols.
# No EXPORT_SYMS (kmod.mk's default, NO): nothing.
#
# usage: scripts/export-syms.sh <module>
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
mk=$top/kmod/$1/Makefile
[ -f "$mk" ] || { echo "export-syms: no $mk" >&2; exit 1; }
# A plain "EXPORT_SYMS= a b" assignment (the makefile keeps it on one line).
syms=$(sed -n 's/^EXPORT_SYMS[[:space:]]*[+?]*=[[:space:]]*//p' "$mk")
case $syms in
    "" | NO) ;;
    YES) echo "export-syms: EXPORT_SYMS=YES in $mk is not supported" >&2; exit 1 ;;
    *) for s in $syms; do echo "$s"; done ;;
esac
