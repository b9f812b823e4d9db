#!/bin/sh
# vm-tests/guest.sh: the part of vm-tests that runs inside the FreeBSD 15 VM
# (as root, from /root/ngsock, copied in by run.sh). One step per call, so
# that the host can tell which step a kernel panic interrupted:
#
#   sh guest.sh setup              load our modules before anything loads
#                                  FreeBSD's, check kldstat -v, build the helper
#   sh guest.sh scenario NAME      run scenarios/NAME.sh (translated on the host)
#   sh guest.sh kyua               FreeBSD's netgraph ATF tests against our modules
#   sh guest.sh kldloop N          kldunload/kldload cycles
#   sh guest.sh final              kernel alive, not rebooted, dmesg clean
#   sh guest.sh native-build       build the modules with bmake (BSDmakefile):
#                                  the prerequisite check, make, make load's
#                                  refusal and load, make install
#
# Each step prints "RESULT pass|fail|skip NAME [- detail]" lines for run.sh.
set -u
D=${NGSOCK_GUEST_DIR:-/root/ngsock}
MOD=$D/mod
T=${NGSOCK_STEP_TIMEOUT:-300}
PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin
export PATH

result() { # pass|fail|skip NAME [DETAIL]
    if [ -n "${3:-}" ]; then
        echo "RESULT $1 $2 - $3"
    else
        echo "RESULT $1 $2"
    fi
}

# Path of the loaded kernel file NAME.ko (empty if not loaded).
kldpath() {
    kldstat -v | sed -n "s/^ *[0-9][0-9]* .* $1\\.ko (\\(.*\\))\$/\\1/p" | head -n 1
}

# Our two modules loaded, from our files? Loads whichever is missing.
# Prints the problem and returns 1 when FreeBSD's own is loaded instead.
ensure_ours() {
    for m in ng_socket ng_ksocket; do
        p=$(kldpath "$m")
        if [ -z "$p" ]; then
            kldload "$MOD/$m.ko" || { echo "cannot load $MOD/$m.ko"; return 1; }
            p=$(kldpath "$m")
        fi
        if [ "$p" != "$MOD/$m.ko" ]; then
            echo "$m.ko is loaded from $p, not ours ($MOD/$m.ko)"
            return 1
        fi
    done
    return 0
}

# Shut down the netgraph nodes a scenario left behind (persistent echo/hole
# nodes and what hangs off them), so that scenarios do not see each other.
cleanup_nodes() {
    ngctl list 2>/dev/null | awk '
        $1 == "Name:" {
            t = ""; id = ""
            for (i = 1; i < NF; i++) {
                if ($i == "Type:") t = $(i + 1)
                if ($i == "ID:") id = $(i + 1)
            }
            if (t != "socket" && t != "ether" && id != "") print id
        }' | while read -r id; do
        ngctl shutdown "[$id]:" > /dev/null 2>&1
    done
}

step_setup() {
    echo "guest: $(uname -a)"
    echo "guest: freebsd-version -ku: $(freebsd-version -ku 2>/dev/null | tr '\n' ' ')"
    # A panic: print the backtrace on the console, no debugger, no dump,
    # power off at once (QEMU then exits and run.sh reports it).
    for s in debug.trace_on_panic=1 debug.debugger_on_panic=0 kern.panic_reboot_wait_time=0 \
        kern.poweroff_on_panic=1; do
        sysctl "$s" > /dev/null 2>&1 || echo "guest: (sysctl $s not available)"
    done
    dumpon off > /dev/null 2>&1
    # Nothing may have loaded FreeBSD's modules before ours.
    for m in ng_socket ng_ksocket; do
        p=$(kldpath "$m")
        if [ -n "$p" ] && [ "$p" != "$MOD/$m.ko" ]; then
            kldstat -v | grep -E 'ng_|netgraph'
            result fail setup "FreeBSD's $m.ko ($p) was loaded before ours"
            return
        fi
    done
    # Our directory first in the module path, with its own linker.hints, so
    # that the kernel's autoload (mkpeer of a ksocket, libnetgraph's kldload
    # of ng_socket) picks our files, never /boot/kernel's.
    kldxref "$MOD" 2>&1 || echo "guest: kldxref $MOD failed (the linker falls back to file names)"
    oldpath=$(sysctl -n kern.module_path)
    case ";$oldpath;" in
        *";$MOD;"*) ;;
        *) sysctl kern.module_path="$MOD;$oldpath" > /dev/null ;;
    esac
    echo "guest: kern.module_path=$(sysctl -n kern.module_path)"
    if [ -z "$(kldpath ng_socket)" ]; then
        kldload "$MOD/ng_socket.ko" || { result fail setup "kldload $MOD/ng_socket.ko failed"; return; }
    fi
    if [ -z "$(kldpath ng_ksocket)" ]; then
        kldload "$MOD/ng_ksocket.ko" || { result fail setup "kldload $MOD/ng_ksocket.ko failed"; return; }
    fi
    kldstat -v
    for m in ng_socket ng_ksocket; do
        if ! kldstat -v | grep -q -F "$m.ko ($MOD/$m.ko)"; then
            result fail setup "kldstat -v does not show $m.ko loaded from $MOD/$m.ko"
            return
        fi
    done
    # The unprivileged user of "as user", who must reach the scenario files.
    id ngtest > /dev/null 2>&1 || pw useradd ngtest -m -s /bin/sh -c "ngsock vm-tests" ||
        { result fail setup "pw useradd ngtest failed"; return; }
    chmod 711 /root
    chmod -R a+rX "$D"
    # The socket helper of the scenario scripts.
    if ! cc -O2 -Wall -o "$D/sockhelper" "$D/sockhelper.c"; then
        result fail setup "cannot compile sockhelper.c with the base system's cc"
        return
    fi
    sysctl -n kern.boottime > "$D/boottime"
    result pass setup "ours loaded: $(kldpath ng_socket), $(kldpath ng_ksocket)"
}

step_scenario() {
    name=$1
    script=$D/scenarios/$name.sh
    if [ ! -f "$script" ]; then
        result fail "scenario:$name" "no script $script"
        return
    fi
    if ! why=$(ensure_ours); then
        result fail "scenario:$name" "before the scenario: $why"
        return
    fi
    log=$D/logs/scenario-$name.log
    mkdir -p "$D/logs"
    pids=$D/logs/scenario-$name.pids
    sysctls=$D/logs/scenario-$name.sysctl
    : > "$pids"
    : > "$sysctls"
    NGS_KO_DIR=$MOD NGS_HELPER=$D/sockhelper NGS_LIB=$D/ngslib.sh NGS_PIDFILE=$pids \
        NGS_SYSCTL_RESTORE=$sysctls timeout -k 10 "$T" sh "$script" > "$log" 2>&1
    st=$?
    cat "$log"
    # What a killed script could not end itself (its sessions, its helper,
    # the sysctls it changed).
    while read -r pid; do
        kill "$pid" 2> /dev/null
    done < "$pids"
    while IFS= read -r kv; do
        sysctl "$kv" > /dev/null 2>&1
    done < "$sysctls"
    cleanup_nodes
    problem=""
    if ! why=$(ensure_ours); then
        problem="after the scenario: $why"
    fi
    if [ "$st" -eq 0 ] && [ -z "$problem" ]; then
        result pass "scenario:$name"
    elif [ "$st" -eq 124 ] || [ "$st" -eq 137 ]; then
        result fail "scenario:$name" "timed out after ${T}s${problem:+; $problem}"
    else
        detail=$(grep -m 1 '^FAIL ' "$log" | sed 's/^FAIL //')
        result fail "scenario:$name" "${detail:-exit status $st}${problem:+; $problem}"
    fi
}

# FreeBSD's own ATF tests of netgraph, e.g. ksocket's udp_connect and
# udp_bind (docs/ksocket.md:K25) and socket's getsockname (S12).
step_kyua() {
    dir=/usr/tests/sys/netgraph
    if [ ! -f "$dir/Kyuafile" ]; then
        result skip kyua "this image has no $dir (FreeBSD's tests are not installed)"
        return
    fi
    if ! command -v kyua > /dev/null 2>&1; then
        result skip kyua "kyua is not installed in this image"
        return
    fi
    if ! why=$(ensure_ours); then
        result fail kyua "before kyua: $why"
        return
    fi
    echo "guest: test programs:" "$dir"/*
    log=$D/logs/kyua.log
    mkdir -p "$D/logs"
    (cd "$dir" && timeout -k 10 "$T" kyua test --results-file="$D/kyua.db" -k "$dir/Kyuafile") \
        > "$log" 2>&1
    st=$?
    cat "$log"
    kyua report --results-file="$D/kyua.db" --verbose --results-filter=broken,failed 2>&1 |
        head -n 200
    # One line per test case: "<program>:<case>  ->  <result>[: reason]  [<time>]".
    bad=""
    missing=""
    for prog in ksocket socket; do
        if [ ! -x "$dir/$prog" ]; then
            missing="$missing $prog"
            continue
        fi
        n=$(grep -c -E "^(.*/)?$prog:[^ ]+ +-> +passed" "$log")
        notok=$(grep -E "^(.*/)?$prog:[^ ]+ +-> +" "$log" |
            grep -v -E -e '-> +(passed|expected_failure)' | sed 's/ *\[.*//' | tr '\n' ';')
        if [ "$n" -eq 0 ]; then
            bad="$bad $prog: no passing test case;"
        fi
        [ -n "$notok" ] && bad="$bad $notok"
    done
    others=$(grep -E '^[^ ]+:[^ ]+ +-> +(failed|broken)' "$log" |
        grep -v -E '^(.*/)?(ksocket|socket):' | sed 's/ *\[.*//' | tr '\n' ';')
    [ -n "$others" ] && bad="$bad $others"
    after=""
    if ! why=$(ensure_ours); then
        after="after kyua: $why"
    fi
    total=$(grep -c -E '^[^ ]+:[^ ]+ +-> +' "$log")
    if [ "$total" -eq 0 ]; then
        result fail kyua "kyua ran no test case (exit status $st)"
    elif [ -n "$bad" ] || [ -n "$after" ]; then
        result fail kyua "${bad# }${after:+ $after}"
    else
        result pass kyua "$total test cases${missing:+; not in this image:$missing}"
    fi
}

step_kldloop() {
    n=${1:-20}
    if ! why=$(ensure_ours); then
        result fail kldload-loop "$why"
        return
    fi
    i=0
    while [ "$i" -lt "$n" ]; do
        i=$((i + 1))
        kldunload ng_ksocket || { result fail kldload-loop "cycle $i: kldunload ng_ksocket failed"; return; }
        [ -z "$(kldpath ng_ksocket)" ] || { result fail kldload-loop "cycle $i: ng_ksocket still loaded"; return; }
        kldload "$MOD/ng_ksocket.ko" || { result fail kldload-loop "cycle $i: kldload failed"; return; }
        [ "$(kldpath ng_ksocket)" = "$MOD/ng_ksocket.ko" ] ||
            { result fail kldload-loop "cycle $i: ng_ksocket.ko not ours after reload"; return; }
        # Use it once per cycle: a ksocket comes and goes with a one-shot ngctl.
        ngctl mkpeer . ksocket k inet/dgram/udp ||
            { result fail kldload-loop "cycle $i: mkpeer ksocket failed"; return; }
    done
    # ng_socket: by default it never unloads, as FreeBSD's...
    if kldunload ng_socket 2>/dev/null; then
        result fail kldload-loop "kldunload ng_socket succeeded with net.graph.socket.allow_unload=0"
        return
    fi
    sysctl net.graph.socket.allow_unload=1 > /dev/null ||
        { result fail kldload-loop "cannot set net.graph.socket.allow_unload"; return; }
    # ...and with net.graph.socket.allow_unload=1 it is busy while a netgraph
    # socket exists (a running ngctl)...
    fifo=$D/hold.fifo
    rm -f "$fifo"
    mkfifo "$fifo"
    exec 3<> "$fifo"
    ngctl -f "$fifo" > /dev/null 2>&1 &
    holder=$!
    j=0
    while [ "$j" -lt 50 ] && ! ngctl list 2>/dev/null | grep -q "ngctl$holder "; do
        sleep 0.1
        j=$((j + 1))
    done
    if kldunload ng_socket 2>/dev/null; then
        exec 3>&-
        wait "$holder"
        result fail kldload-loop "kldunload ng_socket succeeded while a netgraph socket was open"
        return
    fi
    exec 3>&-
    wait "$holder"
    rm -f "$fifo"
    # ...and (unlike FreeBSD's, an opt-in improvement) unloadable when none does.
    k=0
    while [ "$k" -lt 3 ]; do
        k=$((k + 1))
        if ! { sysctl net.graph.socket.allow_unload=1 > /dev/null &&
            kldunload ng_ksocket && kldunload ng_socket; }; then
            result fail kldload-loop "ng_socket cycle $k: kldunload failed with no netgraph socket open"
            return
        fi
        if ! { kldload "$MOD/ng_socket.ko" && kldload "$MOD/ng_ksocket.ko"; }; then
            result fail kldload-loop "ng_socket cycle $k: kldload failed"
            return
        fi
        ngctl list > /dev/null || { result fail kldload-loop "ng_socket cycle $k: ngctl list failed"; return; }
    done
    if ! why=$(ensure_ours); then
        result fail kldload-loop "$why"
        return
    fi
    result pass kldload-loop "$n ng_ksocket cycles, 3 ng_socket cycles"
}

step_final() {
    problems=""
    if [ -f "$D/boottime" ] && [ "$(sysctl -n kern.boottime)" != "$(cat "$D/boottime")" ]; then
        problems="$problems the kernel rebooted during the run;"
    fi
    if ! why=$(ensure_ours); then
        problems="$problems $why;"
    fi
    ngctl list > /dev/null 2>&1 || problems="$problems ngctl list failed;"
    bad=$(dmesg | grep -E 'panic|WITNESS|lock order reversal')
    if [ -n "$bad" ]; then
        echo "guest: dmesg:"
        echo "$bad"
        problems="$problems dmesg: $(echo "$bad" | head -n 3 | tr '\n' ';')"
    fi
    kldstat -v | grep -E 'ng_|netgraph'
    echo "guest: uptime: $(uptime)"
    if [ -n "$problems" ]; then
        result fail final-check "${problems# }"
    else
        result pass final-check "kernel alive, no panic, WITNESS or lock order warning in dmesg"
    fi
}

step_native_build() {
    src=$D/src
    rel=$(uname -r | sed 's/-p[0-9]*$//')
    case $rel in
        *-RELEASE) url=https://download.freebsd.org/releases/amd64/amd64/$rel/src.txz ;;
        *) url=https://download.freebsd.org/snapshots/amd64/amd64/$rel/src.txz ;;
    esac
    if [ ! -f /usr/src/sys/conf/kmod.mk ]; then
        echo "guest: fetching the kernel sources ($url, sys/ only)"
        timeout 1800 fetch -q -o /tmp/src.txz "$url" ||
            { result fail native-build "cannot fetch $url"; return; }
        tar -xf /tmp/src.txz -C / usr/src/sys ||
            { result fail native-build "cannot extract usr/src/sys"; return; }
        rm -f /tmp/src.txz
    fi
    cd "$src" || { result fail native-build "no sources in $src"; return; }
    # Rust first, without llvm: make must stop at once with one line that
    # names the package to install (bindgen needs libclang).
    if ! command -v cargo > /dev/null 2>&1; then
        echo "guest: pkg install rust"
        env ASSUME_ALWAYS_YES=yes timeout 1800 pkg install -y rust ||
            { result fail native-build "pkg install rust failed"; return; }
    fi
    rustc --version
    if ls /usr/local/llvm[0-9]*/lib/libclang.so* > /dev/null 2>&1; then
        result skip native-prereq "an llvm package is already installed"
    else
        timeout -k 10 600 make SYSDIR=/usr/src/sys > "$D/prereq.log" 2>&1
        st=$?
        tail -n 5 "$D/prereq.log"
        line=$(grep -m 1 'pkg install llvm19' "$D/prereq.log")
        if [ "$st" -ne 0 ] && [ -n "$line" ]; then
            result pass native-prereq "without libclang make stops with: $line"
        else
            result fail native-prereq "without libclang make did not stop with the pkg install line (status $st)"
        fi
        echo "guest: pkg install llvm19"
        env ASSUME_ALWAYS_YES=yes timeout 1800 pkg install -y llvm19 ||
            { result fail native-build "pkg install llvm19 failed"; return; }
    fi
    if ! timeout -k 10 3600 make SYSDIR=/usr/src/sys; then
        result fail native-build "make (bmake, BSDmakefile) failed"
        return
    fi
    so=$(cd kmod/ng_socket && make -V .OBJDIR)/ng_socket.ko
    ks=$(cd kmod/ng_ksocket && make -V .OBJDIR)/ng_ksocket.ko
    if [ ! -f "$so" ] || [ ! -f "$ks" ]; then
        result fail native-build "make succeeded but produced no $so / $ks"
        return
    fi
    ls -l "$so" "$ks"
    result pass native-build "$so $ks"
    native_load "$so" "$ks"
    native_install
}

# make load refuses while FreeBSD's own module is loaded (ng_ksocket here:
# FreeBSD's ng_socket can never be unloaded), then loads ours, which work.
native_load() { # NG_SOCKET.ko NG_KSOCKET.ko
    so=$1
    ks=$2
    for m in ng_ksocket ng_socket; do
        p=$(kldpath "$m")
        if [ -n "$p" ]; then
            # Ours (loaded by the earlier steps) unloads only when allowed.
            sysctl -q net.graph.socket.allow_unload=1 > /dev/null 2>&1 || true
            kldunload "$m" || { result fail native-load "cannot unload $m ($p) first"; return; }
        fi
    done
    kldload /boot/kernel/ng_ksocket.ko ||
        { result fail native-load "cannot load FreeBSD's ng_ksocket.ko"; return; }
    if make load > "$D/load-refused.log" 2>&1; then
        result fail native-load "make load succeeded while FreeBSD's ng_ksocket.ko was loaded"
        return
    fi
    cat "$D/load-refused.log"
    if ! grep -q "FreeBSD's own ng_ksocket.ko is loaded" "$D/load-refused.log" ||
        [ -n "$(kldpath ng_socket)" ]; then
        result fail native-load "make load's refusal: no clear message, or it loaded something"
        return
    fi
    kldunload ng_ksocket || { result fail native-load "cannot unload FreeBSD's ng_ksocket"; return; }
    if make load && [ "$(kldpath ng_socket)" = "$so" ] && [ "$(kldpath ng_ksocket)" = "$ks" ] &&
        ngctl mkpeer . ksocket k inet/dgram/udp && make unload &&
        [ -z "$(kldpath ng_ksocket)" ] && [ -z "$(kldpath ng_socket)" ]; then
        result pass native-load "make load refuses FreeBSD's ng_ksocket.ko, then loads ours, which create a ksocket; make unload"
    else
        kldstat -v | grep -E 'ng_|netgraph'
        result fail native-load "make load / make unload of the natively built modules"
    fi
}

# make install into a staging directory installs exactly the port's pkg-plist
# (and prints the lines that make the kernel load ours).
native_install() {
    stage=$D/stage
    rm -rf "$stage"
    if ! make install DESTDIR="$stage" NO_XREF=yes > "$D/install.log" 2>&1; then
        cat "$D/install.log"
        result fail native-install "make install DESTDIR=$stage failed"
        return
    fi
    cat "$D/install.log"
    kmoddir=$(make -V KMODDIR)
    prefix=$(make -V PREFIX)
    (cd "$stage" && find . -type f | sed 's|^\./|/|' | sort) > "$D/installed.txt"
    sed -e "s|^%%KMODDIR%%|$kmoddir|" -e "/^\//!s|^|$prefix/|" \
        ports/net/ngsock-kmod/pkg-plist | sort > "$D/plist.txt"
    if ! cmp -s "$D/installed.txt" "$D/plist.txt"; then
        diff "$D/plist.txt" "$D/installed.txt"
        result fail native-install "make install does not install the port's pkg-plist"
    elif ! grep -q "kld_list" "$D/install.log"; then
        result fail native-install "make install printed no kld_list / loader.conf lines"
    else
        result pass native-install "installs $(wc -l < "$D/installed.txt" | tr -d ' ') files, as pkg-plist; prints the kld_list lines"
    fi
}

case ${1:-} in
    setup) step_setup ;;
    scenario) step_scenario "$2" ;;
    kyua) step_kyua ;;
    kldloop) step_kldloop "${2:-20}" ;;
    final) step_final ;;
    native-build) step_native_build ;;
    *)
        echo "usage: sh guest.sh setup|scenario NAME|kyua|kldloop N|final|native-build" >&2
        exit 64
        ;;
esac
exit 0
