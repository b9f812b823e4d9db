#!/bin/sh
# Coverage of the modules' own code by the tests (`make coverage`): builds
# the cov flavour of both modules (one flag per SanitizerCoverage edge,
# line tables), runs the harness tests, the scenarios and the fuzz corpus
# against it with every harness process writing what it reached to
# build/cov/data, and prints which functions and edges no test reached
# (also written to build/cov/report.txt).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"
cd "$top" || exit 1
sh scripts/build-ko.sh ksocket ng_ksocket build/cov/ng_ksocket.ko cov || exit 1
sh scripts/build-ko.sh socket ng_socket build/cov/ng_socket.ko cov || exit 1
data=$top/build/cov/data
rm -rf "$data"
mkdir -p "$data"
NGSOCK_BUILD=$top/build/cov
NGHARNESS_COVERAGE_DIR=$data
export NGSOCK_BUILD NGHARNESS_COVERAGE_DIR
echo "coverage: harness tests against build/cov" >&2
"$CARGO" test --quiet --no-fail-fast -p ngharness 2>&1 | grep -E "^test result|FAILED|panicked" >&2
echo "coverage: scenarios" >&2
"$CARGO" run --quiet -p ngharness -- run --ko build/cov/ng_socket.ko --ko build/cov/ng_ksocket.ko \
    scenarios/*.ngs >/dev/null 2>&1 || echo "coverage: some scenarios failed against build/cov" >&2
echo "coverage: fuzz corpus" >&2
for d in fuzz/corpus/*/; do
    t=$(basename "$d")
    "$CARGO" run --quiet -p ngharness -- fuzz replay --ko build/cov/ng_socket.ko \
        --ko build/cov/ng_ksocket.ko "$t" "$d" >/dev/null 2>&1 || true
done
unset NGHARNESS_COVERAGE_DIR
"$CARGO" run --quiet -p ngharness -- coverage "$data" build/cov/ng_socket.ko.full \
    build/cov/ng_ksocket.ko.full | tee build/cov/report.txt
