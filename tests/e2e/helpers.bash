# Shared setup for cairn's end-to-end tests (bats). Every tests/e2e/tNNNN-*.bats
# file starts with `load helpers`.
#
# What a test gets:
#   - `cairn` on PATH is the freshly built binary ($CAIRN_BUILD_DIR, default
#     $REPO_ROOT/build; `make check` and .ci/run build it first), and
#     `cairn-test-tool` is the helper from tests/helper/.
#   - setup: a fresh, empty temporary directory per test ($TEST_DIR), which is
#     the working directory; HOME points inside it, so nothing from the
#     developer's own configuration leaks in, and CAIRN_DIR is unset.
#   - teardown: every background process registered with track_pid (or
#     started with run_bg) is stopped, then $TEST_DIR is removed.
#   - A file that needs its own setup/teardown defines them and calls
#     cairn_setup / cairn_teardown from them.
#
# Helpers: make_file PATH SIZE SEED, files_equal A B, track_pid PID,
# run_bg LOG CMD..., wait_until SECONDS CMD..., free_port, stress_iters,
# kill_at_random CMD....
# Tests never assert on timing (SPEC section 9): wait_until is for readiness.

REPO_ROOT="$(cd "$(dirname "${BATS_TEST_FILENAME}")/../.." && pwd)"
CAIRN_BUILD_DIR="${CAIRN_BUILD_DIR:-$REPO_ROOT/build}"
export REPO_ROOT CAIRN_BUILD_DIR

load /usr/lib/bats/bats-support/load.bash
load /usr/lib/bats/bats-assert/load.bash

PATH="$CAIRN_BUILD_DIR:$CAIRN_BUILD_DIR/tests/helper:$PATH"
export PATH

# Iterations for the stress tests: `make check` runs 50, `make stress` 1000.
stress_iters() {
    echo "${CAIRN_STRESS_ITERS:-50}"
}

cairn_setup() {
    if [[ ! -x $CAIRN_BUILD_DIR/cairn ]]; then
        echo "no cairn binary in $CAIRN_BUILD_DIR: run 'make' first" >&2
        return 1
    fi
    TEST_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cairn-e2e.XXXXXXXX")"
    export TEST_DIR
    mkdir "$TEST_DIR/.home"
    export HOME="$TEST_DIR/.home"
    export LC_ALL=C
    export NO_COLOR=1
    unset CAIRN_DIR
    CAIRN_TRACKED_PIDS=()
    cd "$TEST_DIR"
}

cairn_teardown() {
    cairn_kill_tracked
    cd /
    if [[ -n ${TEST_DIR:-} && -d $TEST_DIR ]]; then
        # Tests may leave read-only files behind (stored objects are read-only).
        chmod -R u+w "$TEST_DIR" 2>/dev/null || true
        rm -rf "$TEST_DIR"
    fi
}

setup() {
    cairn_setup
}

teardown() {
    cairn_teardown
}

# Register a background process for teardown to stop.
track_pid() {
    CAIRN_TRACKED_PIDS+=("$1")
}

# Stop every tracked process (and its direct children): TERM, up to 5 s of
# grace, then KILL. Safe to call more than once.
cairn_kill_tracked() {
    local pid i
    for pid in "${CAIRN_TRACKED_PIDS[@]}"; do
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${CAIRN_TRACKED_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    CAIRN_TRACKED_PIDS=()
}

# kill_at_random CMD [ARG]...: run CMD in the background and kill -9 it after
# a random 0-59 ms (it may finish first), and reap it: for crash tests.
kill_at_random() {
    "$@" >/dev/null 2>&1 &
    local pid=$!
    sleep "0.0$((RANDOM % 60))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# run_bg LOG CMD [ARG]...: start CMD in the background with stdout and stderr
# in LOG, track it, and leave its pid in $BG_PID.
run_bg() {
    local log="$1"
    shift
    "$@" >"$log" 2>&1 </dev/null &
    BG_PID=$!
    track_pid "$BG_PID"
}

# wait_until SECONDS CMD [ARG]...: retry CMD every 0.1 s until it succeeds;
# fail (status 1) if it has not within SECONDS.
wait_until() {
    local limit=$(($1 * 10)) i
    shift
    for ((i = 0; i < limit; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "wait_until: '$*' did not succeed within $((limit / 10)) s" >&2
    return 1
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    local port i
    # Below Linux's ephemeral range (32768-60999): a port there can be taken
    # at any moment as the local end of some other test's outgoing
    # connection (bats runs two files at once), and then the listen fails
    # with "address already in use" although nothing listened when we
    # looked. Here only ports that someone binds on purpose live.
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "free_port: no free port found" >&2
    return 1
}

# make_file PATH SIZE SEED: SIZE deterministic pseudo-random bytes (SIZE takes
# K/M/G suffixes); the same SEED always gives the same content.
make_file() {
    mkdir -p "$(dirname "$1")"
    cairn-test-tool gen "$1" "$2" "$3"
}

# files_equal A B: succeed if A and B have identical bytes; otherwise fail
# the test naming the first difference.
files_equal() {
    local diff
    if ! diff="$(cmp -- "$1" "$2" 2>&1)"; then
        fail "files differ: ${diff:-$1 $2}"
    fi
}
