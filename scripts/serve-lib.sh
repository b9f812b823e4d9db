# Shell functions for scripts that run programs against `ngharness serve`
# (sourced; needs $CARGO from scripts/env.sh and $BUILD).
#
#   serve_start WHO SOCK LOG   builds the harness, starts `ngharness serve` on
#                              both modules listening on SOCK, logging to LOG,
#                              and waits for its ready line; sets serve_pid.
#                              Exits (status 1) if it does not come up.
#   serve_stop WHO LOG         stops it (SIGTERM); status 0 and its
#                              "connection(s) served" line if its end-of-run
#                              report is clean, else the log and status 1.

serve_start() {
    "$CARGO" build --quiet -p ngharness || exit 1
    : >"$3"
    target/debug/ngharness serve --ko "$BUILD/ng_socket.ko" --ko "$BUILD/ng_ksocket.ko" \
        --listen "$2" >"$3" 2>&1 &
    serve_pid=$!
    _i=0
    until grep -q '^ngharness serve: ready' "$3" 2>/dev/null && [ -S "$2" ]; do
        _i=$((_i + 1))
        if [ $_i -gt 300 ] || ! kill -0 "$serve_pid" 2>/dev/null; then
            echo "$1: ngharness serve did not start:"
            cat "$3"
            kill "$serve_pid" 2>/dev/null
            exit 1
        fi
        sleep 0.1
    done
}

serve_stop() {
    kill -TERM "$serve_pid"
    wait "$serve_pid"
    _st=$?
    if [ $_st -ne 0 ] || ! grep -q '^violations: none' "$2"; then
        echo "$1: ngharness serve ended with status $_st:"
        cat "$2"
        return 1
    fi
    grep '^ngharness serve: .* served' "$2"
}
