# ngslib.sh: runtime library of the scripts that vm-tests/translate.py makes
# from scenario files. Sourced by each generated script; FreeBSD /bin/sh
# (POSIX sh; also runs under bash and dash, which the host tests use).
#
# Environment (guest.sh sets it; defaults are the guest layout):
#   NGS_KO_DIR           our ng_socket.ko and ng_ksocket.ko   (/root/ngsock/mod)
#   NGS_HELPER           the compiled sockhelper              (/root/ngsock/sockhelper)
#   NGS_USER             the unprivileged user of "as user"   (ngtest)
#   NGS_NGCTL            ngctl to run                         (ngctl)
#   NGS_CMD_TIMEOUT      seconds one command may take         (30)
#   NGS_SESSION_TIMEOUT  seconds a session command may take   (10)
#   NGS_SLOW             multiplies every time bound (an emulated CPU) (1)
#   NGS_PIDFILE          file to which the PIDs of background processes are
#                        appended, so that the caller can end them if the
#                        script itself is killed                (none)
#   NGS_SYSCTL_RESTORE   file of NAME=VALUE lines: the values the scenario's
#                        sysctl statements changed, restored when it ends
#                        (and by the caller if it was killed)   (in the work dir)
#
# Every wait is bounded. A scenario fails at its first unmet expectation:
# the script prints "FAIL <file>:<line>: <why>", the statement and the
# command's output, and exits 1. It prints "PASS <file>" and exits 0 when
# every statement held.

: "${NGS_KO_DIR:=/root/ngsock/mod}"
: "${NGS_HELPER:=/root/ngsock/sockhelper}"
: "${NGS_USER:=ngtest}"
: "${NGS_NGCTL:=ngctl}"
: "${NGS_CMD_TIMEOUT:=30}"
: "${NGS_SESSION_TIMEOUT:=10}"
: "${NGS_SLOW:=1}"
export NGS_SLOW
NGS_CMD_TIMEOUT=$((NGS_CMD_TIMEOUT * NGS_SLOW))
NGS_SESSION_TIMEOUT=$((NGS_SESSION_TIMEOUT * NGS_SLOW))
LC_ALL=C
export LC_ALL

NGS_FILE="?"
NGS_LINE=0
NGS_STMT=""
NGS_N=0
NGS_W=""
NGS_KIND=""
NGS_ST=0
NGS_OUT=/dev/null
NGS_POS=0
NGS_SESS=""
NGS_SESSIONS=""
NGS_HPID=""

# ---------------------------------------------------------------- basics

ngs_begin() { # FILE TITLE
    NGS_FILE=$1
    NGS_W=$(mktemp -d "${TMPDIR:-/tmp}/ngs.XXXXXX") || { echo "FAIL $1:0: mktemp failed"; exit 1; }
    chmod 1777 "$NGS_W"
    trap 'ngs__cleanup' EXIT
    trap 'exit 130' INT TERM HUP
    echo "scenario $1${2:+: $2}"
    # Relative file names in commands (ngctl -f FILE) are the scenario
    # directory's, as in the host harness: its other files are copied along.
    cd "${NGS_SCENARIO_DIR:-$(dirname "$0")}" || ngs_fail "cannot cd to the scenario directory"
}

ngs_at() { # LINE STATEMENT
    NGS_LINE=$1
    NGS_STMT=$2
    echo "  $1: $2"
}

ngs_fail() {
    echo "FAIL $NGS_FILE:$NGS_LINE: $*"
    echo "  statement: $NGS_STMT"
    if [ -n "${NGS_SHOW:-}" ] && [ -s "$NGS_SHOW" ]; then
        echo "  output:"
        sed -e 's/^/    | /' "$NGS_SHOW" | head -n 80
    fi
    exit 1
}

ngs_end() {
    for _s in $NGS_SESSIONS; do
        ngs__sess_kill "$_s"
    done
    NGS_SESSIONS=""
    ngs__helper_stop
    ngs__sysctl_restore
    echo "PASS $NGS_FILE"
    exit 0
}

ngs__cleanup() {
    _rc=$?
    for _s in $NGS_SESSIONS; do
        ngs__sess_kill "$_s"
    done
    ngs__helper_stop
    ngs__sysctl_restore
    if [ -n "$NGS_W" ] && [ -z "${NGS_KEEP:-}" ]; then
        rm -rf "$NGS_W"
    fi
    exit "$_rc"
}

ngs__pid() {
    if [ -n "${NGS_PIDFILE:-}" ]; then
        echo "$1" >> "$NGS_PIDFILE"
    fi
}

# Quote one word for sh -c.
ngs__q() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# A new output file for the next command.
ngs__newout() {
    NGS_N=$((NGS_N + 1))
    NGS_OUT=$NGS_W/out.$NGS_N
    NGS_SHOW=$NGS_OUT
    NGS_POS=0
    : > "$NGS_OUT"
}

# Print a command's output into the log, indented.
ngs__echo_out() {
    if [ -s "$NGS_OUT" ]; then
        sed -e 's/^/    | /' "$NGS_OUT" | head -n 40
    fi
    if [ "$NGS_ST" -ne 0 ]; then
        echo "    (exit status $NGS_ST)"
    fi
}

# ngs__run WHO CMD ARGS...: run with a time bound, as root or as NGS_USER,
# output (stdout and stderr) into NGS_OUT, status into NGS_ST.
ngs__run() {
    _who=$1
    shift
    if [ "$_who" = user ]; then
        _c=""
        for _a in "$@"; do
            _c="$_c $(ngs__q "$_a")"
        done
        timeout -k 5 "$NGS_CMD_TIMEOUT" su "$NGS_USER" -c "$_c" > "$NGS_OUT" 2>&1 < /dev/null
    else
        timeout -k 5 "$NGS_CMD_TIMEOUT" "$@" > "$NGS_OUT" 2>&1 < /dev/null
    fi
    NGS_ST=$?
    if [ "$NGS_ST" -eq 124 ]; then
        echo "    (timed out after ${NGS_CMD_TIMEOUT}s)"
    fi
}

# ngs__find FILE AFTER ERE: number of the first line after line AFTER that
# matches ERE (empty when none).
ngs__find() {
    _l=$(awk -v s="$2" 'NR > s' "$1" | grep -n -E -e "$3" | head -n 1 | cut -d: -f1)
    if [ -n "$_l" ]; then
        echo $((_l + $2))
    fi
}

# ---------------------------------------------------------------- commands

ngs_ngctl() { # WHO ARGS...
    _who=$1
    shift
    ngs__newout
    NGS_KIND=ngctl
    NGS_SESS=""
    ngs__run "$_who" "$NGS_NGCTL" "$@"
    ngs__echo_out
}

ngs_kld() { # load|unload WHO MODULE
    _op=$1 _who=$2 _m=$3
    ngs__newout
    NGS_KIND=kld
    NGS_SESS=""
    # By name, as written: the kernel's module path has our directory first
    # (guest.sh), so "kldload ng_ksocket" loads ours, and kldload's messages
    # name the module as the scenario does.
    ngs__run "$_who" "kld$_op" "$_m"
    ngs__echo_out
    if [ "$_op" = load ] && [ "$NGS_ST" -eq 0 ]; then
        case $_m in
            ng_socket|ng_ksocket)
                _p=$(ngs__kldpath "$_m")
                [ "$_p" = "$NGS_KO_DIR/$_m.ko" ] ||
                    ngs_fail "kldload $_m loaded $_p, not ours ($NGS_KO_DIR/$_m.ko)"
                ;;
        esac
    fi
}

# Path of the loaded kernel file MODULE.ko, from kldstat -v (empty if none).
ngs__kldpath() {
    kldstat -v 2>/dev/null | sed -n "s/^ *[0-9][0-9]* .* $1\\.ko (\\(.*\\))\$/\\1/p" | head -n 1
}

ngs_require() { # MODULE...
    NGS_SHOW=""
    for _m in "$@"; do
        _p=$(ngs__kldpath "$_m")
        case $_m in
            ng_socket|ng_ksocket)
                if [ -z "$_p" ]; then
                    kldload "$NGS_KO_DIR/$_m.ko" || ngs_fail "require: cannot load our $_m.ko"
                    _p=$(ngs__kldpath "$_m")
                fi
                [ "$_p" = "$NGS_KO_DIR/$_m.ko" ] ||
                    ngs_fail "require: $_m.ko is loaded from '$_p', not ours ($NGS_KO_DIR/$_m.ko)"
                ;;
            *)
                if [ -z "$_p" ]; then
                    kldload "$_m" || ngs_fail "require: cannot load $_m"
                fi
                ;;
        esac
        echo "    require $_m: $(ngs__kldpath "$_m")"
    done
}

# The sysctls a scenario changes are set back when it ends: the VM runs
# every scenario in the same kernel.
ngs__sysctl_file() {
    echo "${NGS_SYSCTL_RESTORE:-$NGS_W/sysctl.restore}"
}

ngs__sysctl_restore() {
    _f=$(ngs__sysctl_file)
    [ -s "$_f" ] || return 0
    while IFS= read -r _kv; do
        sysctl "$_kv" > /dev/null 2>&1 || echo "    (cannot restore sysctl $_kv)"
    done < "$_f"
    : > "$_f"
}

ngs_sysctl() { # WHO NAME [VALUE]
    _who=$1 _n=$2
    ngs__newout
    NGS_KIND=sysctl
    NGS_SESS=""
    if [ $# -ge 3 ]; then
        _f=$(ngs__sysctl_file)
        if ! grep -q "^$_n=" "$_f" 2> /dev/null; then
            _old=$(sysctl -n "$_n" 2> /dev/null) && echo "$_n=$_old" >> "$_f"
        fi
        ngs__run "$_who" sysctl "$_n=$3"
    else
        ngs__run "$_who" sysctl "$_n"
    fi
    ngs__echo_out
}

ngs_wait() { # MS
    sleep "$(awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }')"
}

# ---------------------------------------------------------------- sessions
#
# A session is a real interactive ngctl: ngctl only enters interactive mode
# on a terminal, so it runs under script(1), which gives it a pty, reads its
# input from a FIFO (the session's shell fd) and copies everything it prints
# to a file. After each command the library sends a marker line that ngctl
# rejects ("ngctl: "ngsock-mark-N": unknown command"); the output between two
# markers is that command's output, and the marker's arrival bounds the wait.

ngs__var() { eval "printf '%s' \"\${NGS_S_$1_$2:-}\""; }
ngs__setvar() { eval "NGS_S_$1_$2=\$3"; }

# The session's output as lines: CRs, bells and terminal escapes removed,
# ngctl's "+ " prompts stripped, an unfinished last line left out.
ngs__sess_norm() { # NAME
    _raw=$NGS_W/session.$1.raw
    _txt=$NGS_W/session.$1.txt
    _esc=$(printf '\033')
    # sed: drop the last line when it is unfinished (no newline yet).
    # shellcheck disable=SC2016
    if [ -n "$(tail -c 1 "$_raw")" ]; then
        _last='$d'
    else
        _last='$p'
    fi
    tr -d '\r\007' < "$_raw" | sed -n -e "$_last" -e '$!p' |
        sed -e "s/${_esc}\\[[0-9;?]*[A-Za-z]//g" -e "s/${_esc}[()][A-Z0-9]//g" -e 's/^\(+ \)*//' > "$_txt"
}

ngs__sess_alive() { # NAME
    _p=$(ngs__var "$1" pid)
    [ -n "$_p" ] && kill -0 "$_p" 2>/dev/null
}

# Wait (bounded) for marker K of session NAME; prints its line number.
ngs__sess_wait_mark() { # NAME K SECONDS
    _re="^ngctl: \"ngsock-mark-$2\": unknown command\$"
    _i=0
    _n=$(($3 * 10))
    while [ "$_i" -le "$_n" ]; do
        ngs__sess_norm "$1"
        _l=$(ngs__find "$NGS_W/session.$1.txt" 0 "$_re")
        if [ -n "$_l" ]; then
            echo "$_l"
            return 0
        fi
        ngs__sess_alive "$1" || return 1
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

# Wait (bounded) until session NAME is back at its prompt after the line
# typed when its output was FROM bytes long, and has printed nothing for a
# moment. Only then may the next line be typed: ngctl's main thread wakes
# its monitor thread with SIGUSR1, and a line that arrives while the
# monitor prints a packet loses that wakeup (ngctl then hangs), or, just
# after the first prompt, comes before the monitor's handler exists (ngctl
# dies of SIGUSR1).
ngs__sess_settle() { # NAME FROM
    _raw=$NGS_W/session.$1.raw
    _i=0
    _last=-1
    while [ "$_i" -lt $((NGS_SESSION_TIMEOUT * 20)) ] && ngs__sess_alive "$1"; do
        _sz=$(wc -c < "$_raw" | tr -d ' ')
        if [ "$_sz" -eq "$_last" ] &&
            tail -c +"$(($2 + 1))" "$_raw" | tr -d '\r' | sed 1d | grep -q '^+ '; then
            return 0
        fi
        _last=$_sz
        sleep 0.05
        _i=$((_i + 1))
    done
}

ngs__sess_send() { # NAME TEXT...
    _fd=$(ngs__var "$1" fd)
    _s=$1
    shift
    # shellcheck disable=SC2059
    eval "printf '%s\\n' \"\$@\" >&$_fd"
}

ngs__sess_kill() { # NAME
    _p=$(ngs__var "$1" pid)
    _fd=$(ngs__var "$1" fd)
    if [ -n "$_p" ]; then
        kill "$_p" 2>/dev/null
        sleep 0.2
        kill -9 "$_p" 2>/dev/null
        wait "$_p" 2>/dev/null
    fi
    [ -n "$_fd" ] && eval "exec $_fd>&-"
    ngs__setvar "$1" pid ""
    ngs__setvar "$1" fd ""
}

ngs__sess_forget() { # NAME
    _keep=""
    for _x in $NGS_SESSIONS; do
        [ "$_x" = "$1" ] || _keep="$_keep $_x"
    done
    NGS_SESSIONS=$_keep
}

ngs_session_start() { # NAME FD WHO
    _s=$1 _fd=$2 _who=$3
    _raw=$NGS_W/session.$_s.raw
    _fifo=$NGS_W/session.$_s.in
    ngs__newout
    NGS_KIND=session-start
    NGS_SESS=$_s
    rm -f "$_raw" "$_fifo"
    mkfifo "$_fifo" || ngs_fail "mkfifo failed"
    : > "$_raw"
    chmod 666 "$_raw"
    case $(uname -s) in
        FreeBSD) set -- env TERM=dumb script -q -F "$_raw" "$NGS_NGCTL" ;;
        *) set -- env TERM=dumb script -q -f -e -c "$NGS_NGCTL" "$_raw" ;;
    esac
    if [ "$_who" = user ]; then
        _c=""
        for _a in "$@"; do
            _c="$_c $(ngs__q "$_a")"
        done
        su "$NGS_USER" -c "exec $_c" < "$_fifo" > /dev/null 2>&1 &
    else
        "$@" < "$_fifo" > /dev/null 2>&1 &
    fi
    _pid=$!
    ngs__pid "$_pid"
    # Read-write open: never blocks, and keeps the FIFO's write side ours.
    eval "exec $_fd<>\"\$_fifo\""
    ngs__setvar "$_s" pid "$_pid"
    ngs__setvar "$_s" fd "$_fd"
    ngs__setvar "$_s" pos 0
    ngs__setvar "$_s" mark 0
    ngs__setvar "$_s" mline 0
    ngs__setvar "$_s" st ""
    NGS_SESSIONS="$NGS_SESSIONS $_s"
    # Type nothing before ngctl shows its first prompt: input that arrives
    # while it sets up the terminal can be discarded.
    _i=0
    while [ "$_i" -lt $((NGS_SESSION_TIMEOUT * 10)) ] && ngs__sess_alive "$_s" &&
        ! grep -q -F '+ ' "$_raw"; do
        sleep 0.1
        _i=$((_i + 1))
    done
    ngs__sess_settle "$_s" 0
    # Nor before ngctl's monitor thread, started just before that prompt,
    # catches SIGUSR1: the main thread sends it one for every line typed,
    # and until then it ends the process.
    sleep "${NGS_MONITOR_WAIT:-0.5}"
    ngs__sess_send "$_s" "ngsock-mark-0"
    if _l=$(ngs__sess_wait_mark "$_s" 0 "$NGS_SESSION_TIMEOUT"); then
        ngs__setvar "$_s" mline "$_l"
        NGS_ST=0
        NGS_ALIVE=1
    else
        NGS_ALIVE=0
        if ngs__sess_alive "$_s"; then
            NGS_ST=124
            echo "    (session $_s: ngctl did not become ready within ${NGS_SESSION_TIMEOUT}s)"
        else
            wait "$_pid"
            NGS_ST=$?
            ngs__setvar "$_s" pid ""
        fi
        eval "exec $_fd>&-"
        ngs__setvar "$_s" fd ""
        ngs__sess_forget "$_s"
    fi
    ngs__sess_norm "$_s"
    cp "$NGS_W/session.$_s.txt" "$NGS_OUT"
    ngs__echo_out
}

ngs_session_cmd() { # NAME COMMANDLINE
    _s=$1
    ngs__newout
    NGS_KIND=session-cmd
    NGS_SESS=$_s
    NGS_ST=0
    NGS_SHOW=$NGS_W/session.$_s.txt
    ngs__sess_norm "$_s"
    ngs__sess_alive "$_s" || ngs_fail "session $_s: ngctl is no longer running"
    _k=$(($(ngs__var "$_s" mark) + 1))
    _prev=$(ngs__var "$_s" mline)
    _from=$(wc -c < "$NGS_W/session.$_s.raw" | tr -d ' ')
    ngs__sess_send "$_s" "$2"
    ngs__sess_settle "$_s" "$_from"
    ngs__sess_send "$_s" "ngsock-mark-$_k"
    if ! _l=$(ngs__sess_wait_mark "$_s" "$_k" "$NGS_SESSION_TIMEOUT"); then
        if ngs__sess_alive "$_s"; then
            ngs_fail "session $_s: the command did not complete within ${NGS_SESSION_TIMEOUT}s"
        fi
        ngs_fail "session $_s: ngctl exited during the command"
    fi
    ngs__setvar "$_s" mark "$_k"
    ngs__setvar "$_s" mline "$_l"
    # The command's output: between the two markers, without the echoed input.
    awk -v a="$_prev" -v b="$_l" -v c="$2" -v m="ngsock-mark-$_k" \
        'NR > a && NR < b && $0 != c && $0 != m' "$NGS_W/session.$_s.txt" > "$NGS_OUT"
    NGS_SHOW=$NGS_OUT
    ngs__echo_out
}

ngs_session_expect() { # NAME ERE PATTERN TIMEOUT_MS
    _s=$1
    NGS_SHOW=$NGS_W/session.$_s.txt
    _pos=$(ngs__var "$_s" pos)
    _i=0
    _n=$(($4 * NGS_SLOW / 100))
    while :; do
        ngs__sess_norm "$_s"
        _l=$(ngs__find "$NGS_W/session.$_s.txt" "$_pos" "$2")
        if [ -n "$_l" ]; then
            ngs__setvar "$_s" pos "$_l"
            echo "    matched line $_l: $(sed -n "${_l}p" "$NGS_W/session.$_s.txt")"
            NGS_SHOW=$NGS_OUT
            return 0
        fi
        [ "$_i" -ge "$_n" ] && break
        sleep 0.1
        _i=$((_i + 1))
    done
    ngs_fail "session $_s printed no line matching '$3' within $4 ms (after line $_pos)"
}

ngs_session_close() { # NAME
    _s=$1
    _p=$(ngs__var "$_s" pid)
    _fd=$(ngs__var "$_s" fd)
    ngs__newout
    NGS_KIND=close
    NGS_SESS=$_s
    if ngs__sess_alive "$_s"; then
        ngs__sess_settle "$_s" 0
        ngs__sess_send "$_s" quit
    fi
    [ -n "$_fd" ] && eval "exec $_fd>&-"
    ngs__setvar "$_s" fd ""
    _i=0
    while [ "$_i" -lt $((NGS_SESSION_TIMEOUT * 10)) ] && ngs__sess_alive "$_s"; do
        sleep 0.1
        _i=$((_i + 1))
    done
    if ngs__sess_alive "$_s"; then
        echo "    (session $_s: ngctl did not exit within ${NGS_SESSION_TIMEOUT}s of quit; killed)"
        kill "$_p" 2>/dev/null
        sleep 0.2
        kill -9 "$_p" 2>/dev/null
    fi
    if [ -n "$_p" ]; then
        wait "$_p"
        NGS_ST=$?
    else
        NGS_ST=0
    fi
    ngs__setvar "$_s" pid ""
    ngs__sess_forget "$_s"
    ngs__sess_norm "$_s"
    cp "$NGS_W/session.$_s.txt" "$NGS_OUT"
    echo "    (session $_s ended, exit status $NGS_ST)"
}

# ---------------------------------------------------------------- sockets
#
# Sockets outside netgraph belong to one sockhelper daemon per scenario;
# each statement is one request to it (sockhelper req), with its own bound.

ngs__helper_up() {
    [ -n "$NGS_HPID" ] && return 0
    [ -x "$NGS_HELPER" ] || ngs_fail "socket helper $NGS_HELPER is missing (was sockhelper.c compiled?)"
    "$NGS_HELPER" serve "$NGS_W/h.sock" > "$NGS_W/helper.log" 2>&1 &
    NGS_HPID=$!
    ngs__pid "$NGS_HPID"
    _i=0
    while [ ! -S "$NGS_W/h.sock" ] && [ "$_i" -lt 50 ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
    [ -S "$NGS_W/h.sock" ] || ngs_fail "socket helper did not start"
}

ngs__helper_stop() {
    if [ -n "$NGS_HPID" ]; then
        timeout 5 "$NGS_HELPER" req "$NGS_W/h.sock" quit > /dev/null 2>&1
        kill "$NGS_HPID" 2>/dev/null
        wait "$NGS_HPID" 2>/dev/null
        NGS_HPID=""
    fi
}

ngs_sock() { # REQUEST...
    ngs__newout
    NGS_KIND=sock
    NGS_SESS=""
    ngs__helper_up
    timeout -k 2 "$NGS_CMD_TIMEOUT" "$NGS_HELPER" req "$NGS_W/h.sock" "$@" > "$NGS_OUT" 2>&1
    NGS_ST=$?
    ngs__echo_out
}

ngs_sock_expect() { # REQUEST...
    # An expectation on a socket: it leaves the most recent command's output
    # (for "|" and "=>" lines that follow) alone.
    ngs__helper_up
    NGS_N=$((NGS_N + 1))
    _o=$NGS_W/out.$NGS_N
    timeout -k 2 "$NGS_CMD_TIMEOUT" "$NGS_HELPER" req "$NGS_W/h.sock" "$@" > "$_o" 2>&1
    _st=$?
    sed -e 's/^/    | /' "$_o"
    if [ "$_st" -ne 0 ]; then
        NGS_SHOW=""
        ngs_fail "$(head -n 1 "$_o")"
    fi
}

# ---------------------------------------------------------------- expectations

# The warning lines of an interactive ngctl's output: its "ngctl: " lines
# other than libnetgraph's debug log of the messages and packets that pass
# (debug level 2 and up), which is not a failure.
ngs__warnings() { # FILE
    grep -E -e '^[ 	]*ngctl: ' "$1" |
        grep -v -E -e '^[ 	]*ngctl: (SENDING |RECEIVED |SOCKADDR: |NG_MESG :|  |READ |WRITE PACKET |[0-9a-f]{4}:  )'
}

ngs_ok() {
    case $NGS_KIND in
        session-cmd)
            if ngs__warnings "$NGS_OUT" > "$NGS_W/errs" && [ -s "$NGS_W/errs" ]; then
                ngs_fail "session command failed: $(head -n 1 "$NGS_W/errs")"
            fi
            ;;
        session-start)
            [ "$NGS_ALIVE" = 1 ] || ngs_fail "session $NGS_SESS did not start (exit status $NGS_ST)"
            ;;
        *)
            [ "$NGS_ST" -eq 0 ] || ngs_fail "exit status $NGS_ST, expected success"
            ;;
    esac
}

# ngs_error ERRNO STRERROR ERE: the command failed with ERRNO; ERE is the
# output line that says so (translate.py knows each command's wording).
ngs_error() {
    _how="no output line says $1 ($2)"
    case $NGS_KIND in
        ngctl)
            [ "$NGS_ST" -eq 71 ] || ngs_fail "exit status $NGS_ST, expected 71 with a line 'ngctl: ...: $2' ($1)"
            _how="no line 'ngctl: ...: $2' ($1)"
            ;;
        session-cmd)
            _how="no line 'ngctl: ...: $2' ($1)"
            ;;
        session-start)
            [ "$NGS_ALIVE" = 0 ] || ngs_fail "session $NGS_SESS started, expected $1 ($2)"
            [ "$NGS_ST" -eq 71 ] || ngs_fail "exit status $NGS_ST, expected 71 with $1 ($2)"
            _how="no line 'ngctl: ...: $2' ($1)"
            ;;
        *)
            [ "$NGS_ST" -ne 0 ] || ngs_fail "the command succeeded, expected $1 ($2)"
            ;;
    esac
    grep -q -E -e "$3" "$NGS_OUT" || ngs_fail "$_how"
}

# ngs_exit N. An interactive ngctl has no exit status per command: for a
# session command, 0 is no "ngctl: " line, 64 a usage line ("ngctl: usage:
# ..."), 71 an "ngctl: " line that is not a usage line.
ngs_exit() {
    if [ "$NGS_KIND" = session-cmd ]; then
        _err=$(ngs__warnings "$NGS_OUT" | grep -c .)
        _use=$(grep -c -E -e '^[ 	]*ngctl: usage: ' "$NGS_OUT")
        case $1 in
            0) [ "$_err" -eq 0 ] || ngs_fail "the session command failed, expected success" ;;
            64) [ "$_use" -gt 0 ] || ngs_fail "no 'ngctl: usage: ...' line (a usage error, 64)" ;;
            71)
                if [ "$_err" -eq 0 ] || [ "$_use" -gt 0 ]; then
                    ngs_fail "no 'ngctl: ...' error line, or a usage line (expected an error, 71)"
                fi
                ;;
        esac
        return 0
    fi
    if [ "$NGS_KIND" = session-start ] && [ "$NGS_ALIVE" = 1 ]; then
        ngs_fail "session $NGS_SESS is running, expected ngctl to exit with status $1"
    fi
    [ "$NGS_ST" -eq "$1" ] || ngs_fail "exit status $NGS_ST, expected $1"
}

ngs_match() { # ERE PATTERN
    _l=$(ngs__find "$NGS_OUT" "$NGS_POS" "$1")
    [ -n "$_l" ] || ngs_fail "no output line matches '$2' (after line $NGS_POS)"
    NGS_POS=$_l
}

ngs_nomatch() { # ERE PATTERN
    _l=$(ngs__find "$NGS_OUT" 0 "$1")
    [ -z "$_l" ] || ngs_fail "output line $_l matches '$2': $(sed -n "${_l}p" "$NGS_OUT")"
}
