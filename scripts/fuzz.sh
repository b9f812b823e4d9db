#!/bin/sh
# Coverage-guided fuzzing of the modules (`make fuzz`): builds the fuzz
# flavour of both modules (SanitizerCoverage edge counters) and the LibAFL
# engine (fuzz/, its own workspace), then fuzzes each target for
# FUZZ_SECS seconds in turn and prints, per target, the executions, the
# edges reached in each module and the findings (saved and minimized in
# build/fuzz/<target>/findings). Exits 1 if any target had a finding.
#
#   FUZZ_SECS     seconds per target (default 60)
#   FUZZ_TARGETS  targets (default: ksock-msg ngsock-calls ksock-data)
#   FUZZ_SEED     random seed (default: the time)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
cd "$top" || exit 1
secs=${FUZZ_SECS:-60}
targets=${FUZZ_TARGETS:-ksock-msg ngsock-calls ksock-data}
seed=${FUZZ_SEED:-$(date +%s)}

sh scripts/build-ko.sh ksocket ng_ksocket build/fuzz/ng_ksocket.ko fuzz || exit 1
sh scripts/build-ko.sh socket ng_socket build/fuzz/ng_socket.ko fuzz || exit 1
echo "fuzz: building the LibAFL engine (fuzz/)" >&2
(cd fuzz && "$CARGO" build --quiet --release --locked) || exit 1

summary=""
failed=0
for t in $targets; do
    echo "==> fuzz $t: $secs s"
    out=build/fuzz/$t
    mkdir -p "$out"
    fuzz/target/release/ngsock-fuzz --target "$t" --secs "$secs" --seed "$seed" \
        --corpus "fuzz/corpus/$t" --out "$out" 2>&1 | tee "$out/log.txt"
    line=$(grep "^ngsock-fuzz $t: .* executions" "$out/log.txt" | tail -1)
    nf=$(sed -n 's/^findings: //p' "$out/log.txt" | tail -1)
    [ -n "$line" ] || { line="ngsock-fuzz $t: did not finish"; nf=1; }
    summary="$summary$line; findings: ${nf:-?}
"
    [ "${nf:-1}" = 0 ] || failed=1
done
echo "==> fuzz summary (seed $seed)"
printf '%s' "$summary"
exit $failed
