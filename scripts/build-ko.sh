#!/bin/sh
# Builds one kernel module: the Rust crate with the module's feature for the
# kernel target (with its C glue bundled in), then links the .ko the way
# FreeBSD's kmod build does: `ld -r`, every global symbol localized, debug
# info and sections the kernel does not load stripped.
#
# usage: scripts/build-ko.sh <feature> <module name> <output .ko> [flavour]
#
# Flavours (the default is the module as shipped; the others are for the
# host kernel harness only, built in target directories of their own so the
# shipped module is never touched):
#   fuzz  SanitizerCoverage edge counters (inline 8-bit counters and the PC
#         table, sections __sancov_cntrs / __sancov_pcs) in the module's own
#         code, for the coverage-guided fuzzer (`make fuzz`);
#   cov   the same with one flag per edge (__sancov_bools) and line tables,
#         for the coverage report of the tests (`make coverage`).
# Only the ngsock crate is instrumented (`cargo rustc`), not core.
#
# Symbols stay global only when listed in EXPORT_SYMS of the module's BSD
# makefile (kmod/<module>/Makefile, e.g. ngsocklist, which netstat looks up
# by name): the one list both builds use, as kmod.mk does with it.
#
# The kernel codegen flags come from .cargo/config.toml; RUSTFLAGS and
# CARGO_ENCODED_RUSTFLAGS would replace them, so they are cleared.
set -eu
feature=$1
module=$2
out=$3
flavour=${4:-}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
cd "$top"

LD=${LD:-ld.lld-19}
NM=${NM:-llvm-nm-19}
OBJCOPY=${OBJCOPY:-objcopy}
AR=${AR:-llvm-ar-19}
command -v "$LD" >/dev/null 2>&1 || LD=ld.lld
command -v "$NM" >/dev/null 2>&1 || NM=llvm-nm
command -v "$AR" >/dev/null 2>&1 || AR=ar

unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
sancov="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=3 -Cllvm-args=-sanitizer-coverage-pc-table"
case $flavour in
    "")
        echo "build-ko: $module.ko: cargo build --release --target $KTARGET --features $feature" >&2
        json=$("$CARGO" build --quiet --release --target "$KTARGET" -Zbuild-std=core \
                --features "$feature" -p ngsock --message-format=json-render-diagnostics) ;;
    fuzz | cov)
        if [ "$flavour" = fuzz ]; then
            flags="$sancov -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
        else
            flags="$sancov -Cllvm-args=-sanitizer-coverage-inline-bool-flag -Cdebuginfo=line-tables-only"
        fi
        echo "build-ko: $module.ko ($flavour): cargo rustc --release --target $KTARGET --features $feature -- $flags" >&2
        # shellcheck disable=SC2086 # $flags is a list of words
        json=$("$CARGO" rustc --quiet --release --target "$KTARGET" -Zbuild-std=core \
                --features "$feature" -p ngsock --lib --target-dir "$top/target/ko-$flavour" \
                --message-format=json-render-diagnostics -- $flags) ;;
    *) echo "build-ko: unknown flavour $flavour" >&2; exit 2 ;;
esac
lib=$(printf '%s\n' "$json" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ngsock":
        for f in m["filenames"]:
            if f.endswith(".a"):
                print(f)
')
[ -n "$lib" ] || { echo "build-ko: no static library produced" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"
(cd "$work" && "$AR" x "$lib")
# C glue objects first: ld.lld takes EI_OSABI (FreeBSD) from the first input.
glue=$(cd "$work" && ls | grep -E '(glue_[a-z]+|_glue)\.o$' | sort || true)
rust=$(cd "$work" && ls | grep -E '\.o$' | grep -vE '(glue_[a-z]+|_glue)\.o$' | grep -v '^compiler_builtins-' || true)
[ -n "$glue" ] || { echo "build-ko: no C glue objects in $lib" >&2; exit 1; }
[ -n "$rust" ] || { echo "build-ko: no Rust object in $lib" >&2; exit 1; }
(cd "$work" && "$LD" -r -o "$module.ko.full" $glue $rust)
sh "$top/scripts/export-syms.sh" "$module" > "$work/exports.txt"
"$NM" -g --defined-only "$work/$module.ko.full" | awk '{print $3}' > "$work/globals.txt"
if [ -s "$work/exports.txt" ]; then
    grep -vxF -f "$work/exports.txt" "$work/globals.txt" > "$work/localize.txt" || true
else
    cp "$work/globals.txt" "$work/localize.txt"
fi
# The instrumented flavours' module constructor (its .init_array entry and code, which
# would hand the counter bounds to __sanitizer_cov_*_init) is dropped: the
# harness finds the counter sections by name when it links the module.
ctors=""
[ -z "$flavour" ] || ctors="--remove-section=.init_array* --remove-section=.rela.init_array* --remove-section=.text.sancov.module_ctor* --remove-section=.rela.text.sancov.module_ctor*"
# shellcheck disable=SC2086 # $ctors is a list of words
"$OBJCOPY" --localize-symbols="$work/localize.txt" --strip-debug $ctors \
    -R .llvmbc -R .llvmcmd -R .llvm_addrsig -R .eh_frame -R .rela.eh_frame -R .comment \
    -R .note.GNU-stack "$work/$module.ko.full" "$out"
cp "$work/$module.ko.full" "$out.full"
echo "build-ko: wrote $out ($(wc -c < "$out") bytes)" >&2
