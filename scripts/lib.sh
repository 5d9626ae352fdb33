# shellcheck shell=bash
# Helpers for scripts that need the test server (SecantusDB, a MongoDB wire-protocol
# server that scripts/setup installs). Source it:
#
#   . scripts/lib.sh
#   start_secantus "$(mktemp -d)"      # sets SECANTUS_PID and SECANTUS_URI
#   ...                                # use "$SECANTUS_URI"
#   stop_secantus
#
# The Rust integration tests do not use this file; tests/common/server.rs finds and
# starts the server the same way.

# The directory scripts/setup installs into.
oxidump_cache_dir() {
    printf '%s\n' "${OXIDUMP_CACHE:-$HOME/.cache/oxidump}"
}

# Prints the path of secantusd-rs: $SECANTUSD if set, else the one scripts/setup
# installed, else the one on PATH. Fails with a hint when there is none.
secantus_bin() {
    if [ -n "${SECANTUSD:-}" ]; then
        printf '%s\n' "$SECANTUSD"
        return 0
    fi
    local cached
    cached="$(oxidump_cache_dir)/secantus/bin/secantusd-rs"
    if [ -x "$cached" ]; then
        printf '%s\n' "$cached"
        return 0
    fi
    if command -v secantusd-rs 2>/dev/null; then
        return 0
    fi
    echo "secantusd-rs not found (not in \$SECANTUSD, $cached, nor PATH); run scripts/setup" >&2
    return 1
}

# start_secantus DIR: starts the server in the background on a free port, storage in
# DIR/data, stdout and stderr in DIR/server.log; returns once it accepts connections.
# Sets SECANTUS_PID and SECANTUS_URI. Stop it with stop_secantus.
start_secantus() {
    local dir=${1:?usage: start_secantus DIR}
    local bin port="" i
    bin=$(secantus_bin) || return 1
    mkdir -p "$dir/data" || return 1
    # Created here, not by the background job's redirection, which may not have run yet
    # when the loop below first reads it.
    : >"$dir/server.log" || return 1
    "$bin" --port 0 --storage-path "$dir/data" --cache-size 256M --log-level WARNING \
        >"$dir/server.log" 2>&1 </dev/null &
    SECANTUS_PID=$!
    # It prints "secantusd-rs listening on 127.0.0.1:PORT" once bound.
    for ((i = 0; i < 600; i++)); do
        port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$dir/server.log" | head -n 1)
        [ -n "$port" ] && break
        if ! kill -0 "$SECANTUS_PID" 2>/dev/null; then
            echo "secantusd-rs exited before listening; $dir/server.log:" >&2
            cat "$dir/server.log" >&2
            wait "$SECANTUS_PID" 2>/dev/null || true
            unset SECANTUS_PID
            return 1
        fi
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "secantusd-rs printed no port within 60 s; $dir/server.log:" >&2
        cat "$dir/server.log" >&2
        stop_secantus
        return 1
    fi
    # Bound is not yet serving: wait until a TCP connection succeeds.
    for ((i = 0; i < 300; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            SECANTUS_URI="mongodb://127.0.0.1:$port/?directConnection=true"
            return 0
        fi
        sleep 0.1
    done
    echo "secantusd-rs does not accept connections on port $port; $dir/server.log:" >&2
    cat "$dir/server.log" >&2
    stop_secantus
    return 1
}

# Stops the server start_secantus started: SIGTERM, then SIGKILL after 10 s.
stop_secantus() {
    local pid=${SECANTUS_PID:-} i
    unset SECANTUS_PID SECANTUS_URI
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
