#!/bin/sh
# vm-tests/run.sh: run ngsock's tests on a real FreeBSD 15 amd64 kernel.
#
#   sh vm-tests/run.sh build/ng_ksocket.ko build/ng_socket.ko   (make vm-test)
#   sh vm-tests/run.sh --native-build     build the modules inside the VM with
#                                         bmake and the BSDmakefile, and load them
#
# Boots a FreeBSD 15 image under QEMU (KVM when /dev/kvm is usable, TCG with
# longer timeouts otherwise; the image is never modified: -snapshot), serial
# console to a log, driven over ssh as root (the BASIC-CI image allows root
# with an empty password). Inside, guest.sh loads our modules before anything
# loads FreeBSD's, runs every scenario (scenarios/*.ngs, translated here by
# translate.py), FreeBSD's netgraph ATF tests (kyua), a kldload/kldunload
# loop and a final health check. A kernel panic fails the step it interrupted,
# with the backtrace from the serial log, and the VM is booted again for the
# steps after it. Every wait is bounded; the VM is always shut down.
#
# Without an image, or without QEMU or ssh, it prints why and how to provide
# them, counts the tests as skipped and exits 0 (FREEBSD_VM_REQUIRED=1 makes
# that a failure, for CI). Ends with "vm-tests: N passed, M failed, K skipped".
#
# Environment:
#   FREEBSD_VM_IMAGE     a FreeBSD 15 amd64 disk image: qcow2, raw, or raw.xz
#   FREEBSD_VM_DOWNLOAD  1: download the official BASIC-CI image (image.sh)
#   FREEBSD_VM_BRANCH    15.0-RELEASE (default) or 15-STABLE (image.sh)
#   FREEBSD_VM_CACHE     image cache (default ~/.cache/ngsock/vm)
#   FREEBSD_VM_REQUIRED  1: a skip (no image, no QEMU) is a failure
#   FREEBSD_VM_ACCEL     kvm or tcg (default: kvm when /dev/kvm is usable)
#   FREEBSD_VM_MEM       MiB (2048)       FREEBSD_VM_CPUS  (2)
#   FREEBSD_VM_DISK      grow the disk to this size (qcow2 overlay, e.g. 20G)
#   FREEBSD_VM_BOOT_TIMEOUT  seconds until sshd answers (300 KVM, 1500 TCG)
#   FREEBSD_VM_BANNER_TIMEOUT  seconds until FreeBSD's loader or kernel shows
#                        on the serial console (120 KVM, 400 TCG)
#   FREEBSD_VM_TIME_BUDGET  seconds the whole run may take (default: no
#                        limit). Every boot and step is bounded by what is
#                        left; steps that no longer fit are failed as not
#                        run, so that the run ends, with its logs, before a
#                        CI job's own timeout kills it (TCG is 5x slower)
#   VM_TEST_KLD_LOOPS    kldunload/kldload cycles (20)
#   VM_TEST_LOGDIR       logs (build/vm-test-logs)
#   QEMU                 the QEMU binary (qemu-system-x86_64)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
LOGDIR=${VM_TEST_LOGDIR:-$TOP/build/vm-test-logs}
QEMU=${QEMU:-qemu-system-x86_64}
GUEST_DIR=/root/ngsock

say() { printf 'vm-tests: %s\n' "$*"; }

# The time budget: seconds left of FREEBSD_VM_TIME_BUDGET, keeping a reserve
# for the shutdown and the summary (a large number when there is none).
T0=$(date +%s)
BUDGET=${FREEBSD_VM_TIME_BUDGET:-0}
case $BUDGET in
    '' | *[!0-9]*) echo "vm-tests: FREEBSD_VM_TIME_BUDGET=$BUDGET: want a number of seconds" >&2; exit 64 ;;
esac
BUDGET_RESERVE=60
remaining() {
    if [ "$BUDGET" -eq 0 ]; then
        echo 999999
    else
        echo $((BUDGET - ($(date +%s) - T0) - BUDGET_RESERVE))
    fi
}
# bounded SECONDS: SECONDS, or what is left of the budget if that is less.
bounded() {
    _r=$(remaining)
    if [ "$_r" -lt "$1" ]; then echo "$_r"; else echo "$1"; fi
}

usage() {
    echo "usage: sh vm-tests/run.sh NG_KSOCKET.ko NG_SOCKET.ko" >&2
    echo "       sh vm-tests/run.sh --native-build" >&2
    exit 64
}

NATIVE=0
if [ "${1:-}" = --native-build ]; then
    NATIVE=1
    shift
    [ $# -eq 0 ] || usage
else
    [ $# -eq 2 ] || usage
fi
KS=""
SO=""
for a in "$@"; do
    case $(basename "$a") in
        ng_ksocket.ko) KS=$a ;;
        ng_socket.ko) SO=$a ;;
        *) usage ;;
    esac
done

# ---------------------------------------------------------------- results

PASSED=0
FAILED=0
SKIPPED=0

# The tests this run would make, in order: "NAME" per line.
plan() {
    if [ "$NATIVE" = 1 ]; then
        printf '%s\n' native-prereq native-build native-load native-install
        return
    fi
    echo setup
    for f in "$TOP"/scenarios/*.ngs; do
        [ -f "$f" ] || continue
        n=$(basename "$f" .ngs)
        echo "scenario:$n"
    done
    printf '%s\n' kyua kldload-loop final-check
}
PLANNED=$(plan | wc -l | tr -d ' ')

record() { # pass|fail|skip NAME [DETAIL]
    case $1 in
        pass) PASSED=$((PASSED + 1)); _w=PASS ;;
        fail) FAILED=$((FAILED + 1)); _w=FAIL ;;
        *) SKIPPED=$((SKIPPED + 1)); _w=SKIP ;;
    esac
    say "$_w $2${3:+: $3}"
    echo "$_w $2${3:+: $3}" >> "$LOGDIR/results.txt"
}

summary() {
    say "$PASSED passed, $FAILED failed, $SKIPPED skipped"
}

skip_all() { # REASON HOWTO-LINES...
    say "SKIP: $1"
    shift
    for l in "$@"; do
        say "  $l"
    done
    SKIPPED=$PLANNED
    summary
    if [ "${FREEBSD_VM_REQUIRED:-0}" = 1 ]; then
        say "FREEBSD_VM_REQUIRED=1: skipping is a failure here"
        exit 1
    fi
    exit 0
}

die() {
    say "error: $*"
    FAILED=$((FAILED + 1))
    SKIPPED=$((PLANNED - PASSED - FAILED))
    [ "$SKIPPED" -ge 0 ] || SKIPPED=0
    summary
    exit 1
}

HOWTO_IMAGE="provide a FreeBSD 15 amd64 image: FREEBSD_VM_IMAGE=/path/to/FreeBSD-15.0-RELEASE-amd64-BASIC-CI-ufs.raw.xz (raw.xz, raw or qcow2)"
HOWTO_DOWNLOAD="or let vm-tests fetch the official one (about 500 MB, checked against its CHECKSUM.SHA256): FREEBSD_VM_DOWNLOAD=1 make vm-test  [FREEBSD_VM_BRANCH=15-STABLE for a 15-STABLE snapshot]"

# ---------------------------------------------------------------- the image

# qcow2, raw (MBR/GPT boot signature), xz, or unknown.
image_format() {
    magic=$(od -An -tx1 -N 6 "$1" 2>/dev/null | tr -d ' \n')
    case $magic in
        514649fb*) echo qcow2; return ;;
        fd377a585a00) echo xz; return ;;
    esac
    sig=$(od -An -tx1 -j 510 -N 2 "$1" 2>/dev/null | tr -d ' \n')
    if [ "$sig" = 55aa ]; then
        echo raw
    else
        echo unknown
    fi
}

# Size in bytes a guest sees: the qcow2 header's, or the file's.
image_size() { # FILE FORMAT
    if [ "$2" = qcow2 ]; then
        printf '%d\n' "0x$(od -An -tx1 -j 24 -N 8 "$1" | tr -d ' \n')"
    else
        wc -c < "$1" | tr -d ' '
    fi
}

find_image() {
    if [ -n "${FREEBSD_VM_IMAGE:-}" ]; then
        img=$FREEBSD_VM_IMAGE
        [ -e "$img" ] || die "FREEBSD_VM_IMAGE=$img: no such file"
        [ -f "$img" ] || die "FREEBSD_VM_IMAGE=$img: not a regular file"
        [ -r "$img" ] || die "FREEBSD_VM_IMAGE=$img: not readable"
        fmt=$(image_format "$img")
        case $fmt in
            qcow2|raw) ;;
            xz)
                d=${FREEBSD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ngsock/vm}/local
                mkdir -p "$d"
                out=$d/$(basename "$img" .xz)
                if [ -n "$(find "$img" -newer "$out" 2>/dev/null)" ] || [ ! -f "$out" ]; then
                    say "unpacking $img into $out"
                    if ! xz -dc "$img" > "$out.tmp"; then
                        die "FREEBSD_VM_IMAGE=$img: cannot unpack the xz file"
                    fi
                    mv "$out.tmp" "$out"
                fi
                img=$out
                fmt=$(image_format "$img")
                [ "$fmt" = raw ] || [ "$fmt" = qcow2 ] ||
                    die "FREEBSD_VM_IMAGE=$FREEBSD_VM_IMAGE: the xz file holds no disk image"
                ;;
            *)
                die "FREEBSD_VM_IMAGE=$img: not a disk image (want qcow2, or a raw disk with an MBR/GPT boot signature, or .raw.xz; first bytes: $(od -An -tx1 -N 8 "$img" | tr -s ' '))"
                ;;
        esac
        size=$(image_size "$img" "$fmt")
        [ "${size:-0}" -ge 268435456 ] ||
            die "FREEBSD_VM_IMAGE=$img: a $fmt disk of $size bytes is too small to hold FreeBSD"
        IMG=$img
        IMGFMT=$fmt
        return
    fi
    if [ "${FREEBSD_VM_DOWNLOAD:-0}" = 1 ]; then
        command -v xz > /dev/null 2>&1 || skip_all "xz is not installed (apt-get install xz-utils)"
        if ! IMG=$(sh "$HERE/image.sh" fetch); then
            skip_all "could not download the FreeBSD ${FREEBSD_VM_BRANCH:-15.0-RELEASE} image (see above: no network?)" \
                "$HOWTO_IMAGE"
        fi
    elif ! IMG=$(sh "$HERE/image.sh" cached); then
        skip_all "no FreeBSD 15 image (FREEBSD_VM_IMAGE is not set and none is cached in ${FREEBSD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ngsock/vm})" \
            "$HOWTO_IMAGE" "$HOWTO_DOWNLOAD" \
            "vm-tests/README.md says what is checked and how"
    fi
    IMGFMT=$(image_format "$IMG")
}

find_image

# ---------------------------------------------------------------- host tools

command -v "$QEMU" > /dev/null 2>&1 ||
    skip_all "$QEMU not found: QEMU is needed to boot FreeBSD" \
        "install it: apt-get install qemu-system-x86 (Debian/Ubuntu), or set QEMU=/path/to/qemu-system-x86_64"
for t in ssh scp timeout; do
    command -v "$t" > /dev/null 2>&1 ||
        skip_all "$t not found" "install it: apt-get install openssh-client coreutils"
done
if [ "$NATIVE" = 0 ]; then
    [ -f "$KS" ] || die "$KS: no such file (run make first)"
    [ -f "$SO" ] || die "$SO: no such file (run make first)"
    command -v python3 > /dev/null 2>&1 || die "python3 is needed to translate the scenarios"
fi

# QEMU accelerator and CPU model candidates, tried in order until QEMU keeps
# running: KVM with the host CPU (without IA32_ARCH_CAPABILITIES, which some
# nested KVM hosts refuse), then TCG.
if [ -n "${FREEBSD_VM_ACCEL:-}" ]; then
    case $FREEBSD_VM_ACCEL in
        kvm) CANDIDATES="kvm:host kvm:host,-arch-capabilities" ;;
        tcg) CANDIDATES="tcg:qemu64" ;;
        *) die "FREEBSD_VM_ACCEL=$FREEBSD_VM_ACCEL: want kvm or tcg" ;;
    esac
elif [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    CANDIDATES="kvm:host kvm:host,-arch-capabilities tcg:qemu64"
else
    CANDIDATES="tcg:qemu64"
fi

# set_accel ACCEL:CPU: the accelerator, and the time bounds that go with it.
set_accel() {
    ACCEL=${1%%:*}
    CPU=${1#*:}
    if [ "$ACCEL" = kvm ]; then
        SLOW=1
        BOOT_TIMEOUT=${FREEBSD_VM_BOOT_TIMEOUT:-300}
        BANNER_TIMEOUT=${FREEBSD_VM_BANNER_TIMEOUT:-120}
    else
        SLOW=5
        BOOT_TIMEOUT=${FREEBSD_VM_BOOT_TIMEOUT:-1500}
        BANNER_TIMEOUT=${FREEBSD_VM_BANNER_TIMEOUT:-400}
    fi
    # Inside: the step time bound of guest.sh, and the time scale of the scenarios.
    GUEST_ENV="env NGS_SLOW=$SLOW NGSOCK_STEP_TIMEOUT=$((280 * SLOW))"
}
set_accel "${CANDIDATES%% *}"
MEM=${FREEBSD_VM_MEM:-2048}
CPUS=${FREEBSD_VM_CPUS:-2}

# ---------------------------------------------------------------- run state

RUN=$(mktemp -d "${TMPDIR:-/tmp}/ngsock-vm.XXXXXX") || die "mktemp failed"
mkdir -p "$LOGDIR" || die "cannot create $LOGDIR"
rm -f "$LOGDIR"/*.log "$LOGDIR/results.txt"
QPID=""
BOOTN=0
SERIAL=/dev/null
PORT=""

cleanup() {
    rc=$?
    vm_kill
    rm -rf "$RUN"
    exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM HUP

say "image: $IMG ($IMGFMT); QEMU: $QEMU ($CANDIDATES), $CPUS CPUs, $MEM MiB; logs: $LOGDIR"

# ---------------------------------------------------------------- the VM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
        2>/dev/null || echo $((20000 + $$ % 20000))
}

SSH_OPTS="-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
-o LogLevel=ERROR -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=6"

vm_ssh() { # SECONDS COMMAND...
    _t=$1
    shift
    # shellcheck disable=SC2086
    timeout -k 5 "$_t" ssh $SSH_OPTS -p "$PORT" root@127.0.0.1 "$@"
}

vm_put() { # SECONDS FILE DEST
    # shellcheck disable=SC2086
    timeout -k 5 "$1" scp -q $SSH_OPTS -P "$PORT" "$2" "root@127.0.0.1:$3"
}

qemu_alive() { [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; }

vm_kill() {
    if qemu_alive; then
        kill "$QPID" 2>/dev/null
        _i=0
        while qemu_alive && [ "$_i" -lt 50 ]; do
            sleep 0.1
            _i=$((_i + 1))
        done
        qemu_alive && kill -9 "$QPID" 2>/dev/null
    fi
    if [ -n "$QPID" ]; then
        wait "$QPID" 2>/dev/null
    fi
    QPID=""
}

# The panic message and backtrace in the current serial log, if any.
panic_text() {
    awk '/panic: |Fatal trap [0-9]+:/ { p = 1 }
         p { print; n++ }
         p && (/^Uptime:/ || /Automatic reboot/ || /Powering off/ || /^db> / || n >= 80) { exit }' \
        "$SERIAL" 2>/dev/null
}

panic_msg() {
    grep -m 1 -E 'panic: |Fatal trap [0-9]+:' "$SERIAL" 2>/dev/null | tr -d '\r'
}

vm_boot() {
    BOOTN=$((BOOTN + 1))
    SERIAL=$LOGDIR/serial-$BOOTN.log
    : > "$SERIAL"
    PORT=$(free_port)
    disk=$RUN/disk.$IMGFMT
    ln -sf "$(cd "$(dirname "$IMG")" && pwd)/$(basename "$IMG")" "$disk"
    snapshot=-snapshot
    drive="file=$disk,format=$IMGFMT,if=virtio"
    if [ -n "${FREEBSD_VM_DISK:-}" ] && command -v qemu-img > /dev/null 2>&1; then
        # A larger disk (growfs grows the root file system at first boot),
        # as a throwaway overlay: the image itself is still never written.
        qemu-img create -q -f qcow2 -F "$IMGFMT" -b "$disk" "$RUN/overlay.qcow2" "$FREEBSD_VM_DISK" ||
            die "qemu-img create failed"
        drive="file=$RUN/overlay.qcow2,format=qcow2,if=virtio"
        snapshot=""
    fi
    for cand in $CANDIDATES; do
        set_accel "$cand"
        say "boot $BOOTN: $ACCEL (-cpu $CPU), ssh on 127.0.0.1:$PORT, serial console in $SERIAL"
        # shellcheck disable=SC2086
        "$QEMU" -name ngsock-vm -machine q35 -accel "$ACCEL" -cpu "$CPU" \
            -smp "$CPUS" -m "$MEM" $snapshot -drive "$drive" \
            -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:22" -device virtio-net-pci,netdev=n0 \
            -display none -monitor none -serial "file:$SERIAL" -no-reboot \
            > "$LOGDIR/qemu-$BOOTN.log" 2>&1 < /dev/null &
        QPID=$!
        # QEMU that cannot start (an accelerator or CPU model the host
        # refuses) exits at once: try the next candidate.
        _i=0
        while qemu_alive && [ "$_i" -lt 30 ] && [ ! -s "$SERIAL" ]; do
            sleep 0.1
            _i=$((_i + 1))
        done
        if qemu_alive || [ -s "$SERIAL" ]; then
            CANDIDATES="$cand"
            break
        fi
        wait "$QPID" 2>/dev/null
        QPID=""
        say "boot $BOOTN: QEMU refused $ACCEL -cpu $CPU: $(tail -n 2 "$LOGDIR/qemu-$BOOTN.log" | tr '\n' ' ')"
    done
    if [ -z "$QPID" ]; then
        BOOT_ERR="QEMU does not start with any of the accelerators tried (see $LOGDIR/qemu-$BOOTN.log)"
        return 1
    fi
    start=$(date +%s)
    while :; do
        el=$(($(date +%s) - start))
        if ! qemu_alive; then
            wait "$QPID" 2>/dev/null
            QPID=""
            BOOT_ERR="QEMU exited during boot: $(tail -n 3 "$LOGDIR/qemu-$BOOTN.log" | tr '\n' ' ')$(panic_msg)"
            return 1
        fi
        if grep -q 'mountroot>' "$SERIAL"; then
            BOOT_ERR="the kernel cannot mount its root file system (mountroot> prompt)"
            return 1
        fi
        if [ -n "$(panic_msg)" ]; then
            panic_text
            BOOT_ERR="kernel panic during boot: $(panic_msg)"
            return 1
        fi
        if [ "$el" -ge "$BANNER_TIMEOUT" ] &&
            ! grep -q -E 'FreeBSD|Consoles:|BTX|bootstrap loader' "$SERIAL"; then
            BOOT_ERR="no FreeBSD boot output on the serial console within ${BANNER_TIMEOUT}s: is $IMG a bootable FreeBSD amd64 image?"
            return 1
        fi
        if [ "$(remaining)" -le 0 ]; then
            BOOT_ERR="the time budget (FREEBSD_VM_TIME_BUDGET=${BUDGET}s) ran out during boot"
            return 1
        fi
        if [ "$el" -ge "$BOOT_TIMEOUT" ]; then
            BOOT_ERR="sshd did not answer within ${BOOT_TIMEOUT}s (last console lines: $(tail -n 3 "$SERIAL" | tr -d '\r' | tr '\n' ' '))"
            return 1
        fi
        if vm_ssh 20 true > /dev/null 2>&1; then
            say "boot $BOOTN: up after ${el}s: $(vm_ssh 20 'uname -srm' 2>/dev/null)"
            return 0
        fi
        sleep 5
    done
}

# The VM stopped answering? (QEMU gone, or no ssh answer for ~30 s.)
vm_dead() {
    qemu_alive || return 0
    for _i in 1 2 3; do
        vm_ssh 15 true > /dev/null 2>&1 && return 1
        qemu_alive || return 0
        sleep 5
    done
    return 0
}

# ---------------------------------------------------------------- payload

make_payload() {
    p=$RUN/payload
    mkdir -p "$p/mod" "$p/scenarios"
    cp "$HERE/guest.sh" "$HERE/ngslib.sh" "$HERE/sockhelper.c" "$p/"
    if [ "$NATIVE" = 1 ]; then
        mkdir -p "$p/src"
        if git -C "$TOP" rev-parse --git-dir > /dev/null 2>&1; then
            git -C "$TOP" ls-files --cached --others --exclude-standard > "$RUN/files"
            (cd "$TOP" && tar -cf - -T "$RUN/files") | (cd "$p/src" && tar -xf -) ||
                die "cannot copy the sources"
        else
            (cd "$TOP" && tar -cf - --exclude=./target --exclude=./build .) |
                (cd "$p/src" && tar -xf -) || die "cannot copy the sources"
        fi
    else
        cp "$SO" "$p/mod/ng_socket.ko"
        cp "$KS" "$p/mod/ng_ksocket.ko"
        set -- "$TOP"/scenarios/*.ngs
        if [ -f "$1" ]; then
            python3 "$HERE/translate.py" --out-dir "$p/scenarios" "$@" ||
                die "scenario translation failed (see above)"
        fi
        # The scenarios' other files (e.g. ngctl -f command files), which
        # their commands name relative to the scenario directory.
        for f in "$TOP"/scenarios/*; do
            case $f in
                *.ngs|*.sh) ;;
                *) [ -f "$f" ] && cp "$f" "$p/scenarios/" ;;
            esac
        done
    fi
    (cd "$p" && tar -cf "$RUN/payload.tar" .) || die "cannot pack the payload"
}

# Boot, copy the payload in, and (for the module tests) run guest setup.
# Sets UP_ERR on failure.
bring_up() { # COUNT-SETUP(1|0)
    count_setup=$1
    if ! vm_boot; then
        UP_ERR=$BOOT_ERR
        vm_kill
        return 1
    fi
    rel=$(vm_ssh 20 'uname -r' 2>/dev/null)
    case $rel in
        15.*) ;;
        *)
            UP_ERR="the image runs FreeBSD '$rel', not 15.x (a -CURRENT kernel is 16.x: out of scope)"
            return 1
            ;;
    esac
    if ! vm_put 300 "$RUN/payload.tar" /root/ngsock.tar ||
        ! vm_ssh 120 "rm -rf $GUEST_DIR && mkdir -p $GUEST_DIR && tar -xf /root/ngsock.tar -C $GUEST_DIR"; then
        UP_ERR="cannot copy the payload into the VM"
        return 1
    fi
    [ "$NATIVE" = 1 ] && return 0
    out=$LOGDIR/step-setup-$BOOTN.log
    _t=$(bounded $((300 * SLOW)))
    if [ "$_t" -lt 30 ]; then
        UP_ERR="the time budget (FREEBSD_VM_TIME_BUDGET=${BUDGET}s) ran out before setup"
        return 1
    fi
    { vm_ssh "$_t" "$GUEST_ENV NGSOCK_STEP_TIMEOUT=$((_t - 20)) sh $GUEST_DIR/guest.sh setup"
        echo $? > "$RUN/st"; } 2>&1 |
        tee "$out"
    line=$(grep -m 1 '^RESULT ' "$out")
    case $line in
        "RESULT pass "*)
            [ "$count_setup" = 1 ] && record pass setup "$(echo "$line" | sed 's/^RESULT pass setup - //')"
            return 0
            ;;
    esac
    UP_ERR=$(echo "$line" | sed 's/^RESULT [a-z]* setup - //')
    if [ -z "$UP_ERR" ]; then
        if vm_dead; then
            panic_text
            UP_ERR="the VM stopped answering during setup${SERIAL:+: $(panic_msg)}"
        else
            UP_ERR="no result from guest setup (exit status $(cat "$RUN/st"))"
        fi
    fi
    return 1
}

# Run one guest step; record its RESULT lines. Returns 2 when the VM died.
run_step() { # NAME SECONDS GUEST-ARGS
    _name=$1
    _t=$2
    shift 2
    out=$LOGDIR/step-$(echo "$_name" | tr -c 'A-Za-z0-9_.\n-' _).log
    say "=== $_name"
    # Inside, the step's own bound ends it (with its logs) before ours.
    { vm_ssh "$_t" "$GUEST_ENV NGSOCK_STEP_TIMEOUT=$((_t - 20)) sh $GUEST_DIR/guest.sh $*"
        echo $? > "$RUN/st"; } 2>&1 | tee "$out"
    st=$(cat "$RUN/st")
    got=0
    while IFS= read -r l; do
        case $l in
            "RESULT "*)
                # shellcheck disable=SC2086
                set -- $l
                detail=$(echo "$l" | sed -n 's/^RESULT [a-z]* [^ ]* - //p')
                record "$2" "$3" "$detail"
                got=$((got + 1))
                ;;
        esac
    done < "$out"
    if [ "$st" -ne 0 ] || [ "$got" -eq 0 ]; then
        if vm_dead; then
            msg=$(panic_msg)
            if [ -n "$msg" ]; then
                say "kernel panic during $_name; backtrace from the serial console:"
                panic_text | sed 's/^/    /'
                [ "$got" -eq 0 ] && record fail "$_name" "kernel panic: $msg"
            else
                say "the VM stopped answering during $_name; last console lines:"
                tail -n 20 "$SERIAL" | sed 's/^/    /'
                [ "$got" -eq 0 ] && record fail "$_name" "the VM stopped answering (hang?)"
            fi
            return 2
        fi
        if [ "$got" -eq 0 ]; then
            if [ "$st" -eq 124 ]; then
                record fail "$_name" "timed out after ${_t}s"
            else
                record fail "$_name" "no result (exit status $st)"
            fi
        fi
    fi
    return 0
}

# ---------------------------------------------------------------- main

make_payload

MAX_BOOTS=3
if ! bring_up 1; then
    record fail "$( [ "$NATIVE" = 1 ] && echo native-build || echo setup)" "$UP_ERR"
    SKIPPED=$((PLANNED - PASSED - FAILED))
    say "the remaining $SKIPPED tests were not run"
    summary
    exit 1
fi

# The steps, with time bounds for the accelerator the VM runs with.
STEPS=$RUN/steps
if [ "$NATIVE" = 1 ]; then
    echo "native-build $((7200 * SLOW)) native-build" > "$STEPS"
else
    plan | while read -r t; do
        case $t in
            setup) ;;
            scenario:*) echo "$t $((300 * SLOW)) scenario ${t#scenario:}" ;;
            kyua) echo "kyua $((1200 * SLOW)) kyua" ;;
            kldload-loop) echo "kldload-loop $((300 * SLOW)) kldloop ${VM_TEST_KLD_LOOPS:-20}" ;;
            final-check) echo "final-check $((120 * SLOW)) final" ;;
        esac
    done > "$STEPS"
fi

up=1
total=$(wc -l < "$STEPS")
i=0
while [ "$i" -lt "$total" ]; do
    i=$((i + 1))
    # shellcheck disable=SC2046
    set -- $(sed -n "${i}p" "$STEPS")
    if [ "$up" = 0 ]; then
        if [ "$BOOTN" -ge "$MAX_BOOTS" ]; then
            left=$((total - i + 1))
            say "not booting again (already $BOOTN boots): $left tests not run"
            SKIPPED=$((SKIPPED + left))
            break
        fi
        say "booting the VM again for the remaining tests"
        if ! bring_up 0; then
            left=$((total - i + 1))
            say "the VM did not come back ($UP_ERR): $left tests not run"
            record fail reboot "$UP_ERR"
            SKIPPED=$((SKIPPED + left))
            break
        fi
        up=1
    fi
    name=$1
    secs=$(bounded "$2")
    shift 2
    if [ "$secs" -lt 30 ]; then
        left=$((total - i + 1))
        say "the time budget (FREEBSD_VM_TIME_BUDGET=${BUDGET}s) is used up: $left tests not run"
        sed -n "${i},\$p" "$STEPS" | while read -r n _; do
            echo "$n"
        done > "$RUN/notrun"
        while read -r n; do
            record fail "$n" "not run: the time budget (FREEBSD_VM_TIME_BUDGET=${BUDGET}s) is used up"
        done < "$RUN/notrun"
        break
    fi
    run_step "$name" "$secs" "$@"
    if [ $? -eq 2 ]; then
        vm_kill
        up=0
    fi
done

# Not every step reports exactly one result (native-build reports two).
accounted=$((PASSED + FAILED + SKIPPED))
if [ "$accounted" -lt "$PLANNED" ]; then
    SKIPPED=$((SKIPPED + PLANNED - accounted))
fi

if [ "$up" = 1 ] && qemu_alive; then
    vm_ssh 30 'shutdown -p now' > /dev/null 2>&1
    _i=0
    while qemu_alive && [ "$_i" -lt 600 ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
fi
vm_kill
say "logs in $LOGDIR"
summary
[ "$FAILED" -eq 0 ]
