#!/usr/bin/env bash
#
# A real S3 server for cairn's tests: OpenStack Swift with its s3api
# middleware (which really checks SigV4 signatures), from Debian packages
# (scripts/install-deps.sh installs them), on 127.0.0.1 only.
#
# Everything lives under one directory: $CAIRN_S3_DIR if set, else a new
# temporary one (remembered in ${TMPDIR:-/tmp}/cairn-s3-server.$UID so a
# later `stop` or `env` without CAIRN_S3_DIR finds it). It holds swift.conf,
# the four server configs on free ports, the three rings, the object data,
# logs and the PIDs of memcached and the four servers, which are started in
# the background and stopped by PID. Nothing is written outside it.
#
# Usage: scripts/s3-server.sh start [--bucket NAME]   start, wait until ready
#        scripts/s3-server.sh env                     print export lines
#        scripts/s3-server.sh stop                    stop by PID, remove the dir
#        scripts/s3-server.sh status                  exit 0 if it answers
#
# The credentials are tempauth's test user: access key test:tester, secret
# testing, region us-east-1. `env` prints them with the endpoint:
#   eval "$(scripts/s3-server.sh env)"
set -euo pipefail

pointer="${TMPDIR:-/tmp}/cairn-s3-server.$(id -u)"
py=/usr/bin/python3

die() {
    echo "s3-server: $*" >&2
    exit 1
}

state_dir() {
    if [[ -n ${CAIRN_S3_DIR:-} ]]; then
        echo "$CAIRN_S3_DIR"
    elif [[ -f $pointer ]]; then
        cat "$pointer"
    else
        return 1
    fi
}

# N distinct free TCP ports on 127.0.0.1 (bound once by the kernel, then released).
free_ports() {
    "$py" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

write_server_conf() { # FILE PORT KIND
    cat >"$1" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
user = root
swift_dir = $dir/etc
devices = $dir/srv
mount_check = false
recon_cache_path = $dir/cache
log_name = $3-server
log_level = WARNING
log_address = $dir/no-syslog

[pipeline:main]
pipeline = $3-server

[app:$3-server]
use = egg:swift#$3
EOF
}

cmd_start() {
    local bucket=""
    while (($#)); do
        case "$1" in
            --bucket) bucket="${2:?--bucket needs a name}"; shift 2 ;;
            *) die "unknown option '$1'" ;;
        esac
    done
    for b in swift-proxy-server swift-account-server swift-container-server \
        swift-object-server swift-ring-builder memcached; do
        command -v "$b" >/dev/null || die "'$b' is missing: run scripts/install-deps.sh"
    done
    if [[ -n ${CAIRN_S3_DIR:-} ]]; then
        dir="$CAIRN_S3_DIR"
        mkdir -p "$dir"
        [[ ! -f $dir/pids ]] || die "a server already runs in '$dir' (stop it first)"
    else
        dir="$(mktemp -d "${TMPDIR:-/tmp}/cairn-s3.XXXXXXXX")"
        echo "$dir" >"$pointer"
    fi
    dir="$(cd "$dir" && pwd)"
    mkdir -p "$dir/etc" "$dir/srv/d1" "$dir/cache" "$dir/log" "$dir/run"
    read -r pport aport cport oport mport <<<"$(free_ports 5)"

    cat >"$dir/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = cairn-$RANDOM$RANDOM
swift_hash_path_prefix = cairn-$RANDOM$RANDOM

[storage-policy:0]
name = Policy-0
default = yes
EOF
    write_server_conf "$dir/etc/account-server.conf" "$aport" account
    write_server_conf "$dir/etc/container-server.conf" "$cport" container
    write_server_conf "$dir/etc/object-server.conf" "$oport" object
    cat >"$dir/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $pport
workers = 0
user = root
swift_dir = $dir/etc
log_name = proxy-server
log_level = WARNING
log_address = $dir/no-syslog

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$mport

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
EOF
    # One Python process builds the three rings (swift-ring-builder's
    # "create 6 1 1", "add r1z1-127.0.0.1:PORT/d1 100", "rebalance"): nine
    # swift-ring-builder runs cost tens of seconds on a loaded machine.
    "$py" - "$dir/etc" "$aport" "$cport" "$oport" >"$dir/log/rings.log" 2>&1 <<'EOF' ||
import os, sys
from swift.common.ring import RingBuilder
os.chdir(sys.argv[1])
for name, port in zip(("account", "container", "object"), sys.argv[2:5]):
    b = RingBuilder(6, 1, 1)
    b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
               "device": "d1", "weight": 100})
    b.rebalance()
    b.save(name + ".builder")
    b.get_ring().save(name + ".ring.gz")
EOF
        die "cannot build the rings (see $dir/log/rings.log)"

    : >"$dir/pids"
    memcached -l 127.0.0.1 -p "$mport" -U 0 -u root -m 64 >"$dir/log/memcached.log" 2>&1 </dev/null &
    echo $! >>"$dir/pids"
    for s in account container object proxy; do
        "swift-$s-server" "$dir/etc/$s-server.conf" >"$dir/log/$s.log" 2>&1 </dev/null &
        echo $! >>"$dir/pids"
    done
    printf 'export AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 CAIRN_S3_ENDPOINT=http://127.0.0.1:%s\n' \
        "$pport" >"$dir/env"

    # Ready when the proxy's healthcheck answers and a signed S3 request
    # works; then create the bucket if asked.
    if ! s3_probe "$pport" "$bucket" >"$dir/log/probe.log" 2>&1; then
        show_logs >&2
        die "S3 server did not start (probe and logs above, and in $dir/log)"
    fi
    echo "s3-server: ready at http://127.0.0.1:$pport (dir $dir)" >&2
}

# The probe's verdict, which processes are gone, and the tail of every log:
# a failed start in CI must be diagnosable from its output alone.
show_logs() {
    local pid f
    while read -r pid; do
        kill -0 "$pid" 2>/dev/null || echo "s3-server: process $pid has exited"
    done <"$dir/pids"
    for f in "$dir"/log/*.log; do
        echo "--- $f"
        tail -n 15 "$f"
    done
}

# s3_probe PORT [BUCKET]: wait for /healthcheck and for a SigV4-signed
# ListBuckets to succeed, then PUT the bucket if one is named. The wait ends
# early when a server process exits; otherwise it lasts
# $CAIRN_S3_START_TIMEOUT seconds (180): four Swift servers importing
# eventlet at once take 20-35 s on two busy cores, so a tight bound only
# makes CI flaky. A few lines of standard-library Python: awscli takes
# seconds to start.
s3_probe() {
    "$py" - "$1" "${2:-}" "$dir/pids" "${CAIRN_S3_START_TIMEOUT:-180}" <<'EOF'
import datetime, hashlib, hmac, os, sys, time, urllib.error, urllib.request
port, bucket, pids, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
host = "127.0.0.1:" + port
def alive():
    for pid in open(pids).read().split():
        try:
            os.kill(int(pid), 0)
        except OSError:
            return False
    return True
def signed(method, path):
    now = datetime.datetime.utcnow()
    date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    empty = hashlib.sha256(b"").hexdigest()
    creq = "\n".join([method, path, "", "host:" + host, "x-amz-content-sha256:" + empty,
                      "x-amz-date:" + date, "", "host;x-amz-content-sha256;x-amz-date", empty])
    scope = day + "/us-east-1/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + "testing").encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = ("AWS4-HMAC-SHA256 Credential=test:tester/%s, SignedHeaders=host;"
            "x-amz-content-sha256;x-amz-date, Signature=%s" % (scope, sig))
    req = urllib.request.Request("http://%s%s" % (host, path), method=method, data=b"" if method == "PUT" else None,
                                 headers={"x-amz-date": date, "x-amz-content-sha256": empty,
                                          "Authorization": auth})
    return urllib.request.urlopen(req, timeout=5).status
start = time.time()
deadline = start + timeout
while True:
    try:
        urllib.request.urlopen("http://%s/healthcheck" % host, timeout=2)
        signed("GET", "/")
        break
    except (OSError, urllib.error.URLError) as e:
        if time.time() > deadline or not alive():
            sys.exit("not ready after %.1f s (servers %s): %s"
                     % (time.time() - start, "running" if alive() else "exited", e))
        time.sleep(0.1)
print("ready after %.1f s" % (time.time() - start))
# Swift may still answer 503 ("Please reduce your request rate") while its
# account and container servers settle: retry that until the deadline.
while bucket:
    try:
        signed("PUT", "/" + bucket)
        break
    except urllib.error.HTTPError as e:
        if e.code != 503 or time.time() > deadline:
            sys.exit("cannot create bucket %r: HTTP %d %s" % (bucket, e.code, e.read()[:300]))
        time.sleep(0.2)
EOF
}

check_alive() {
    local pid
    while read -r pid; do
        kill -0 "$pid" 2>/dev/null || return 1
    done <"$dir/pids"
}

cmd_stop() {
    dir="$(state_dir)" || return 0
    [[ -d $dir ]] || { rm -f "$pointer"; return 0; }
    if [[ -f $dir/pids ]]; then
        local pid i
        while read -r pid; do
            kill -TERM "$pid" 2>/dev/null || true
        done <"$dir/pids"
        while read -r pid; do
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        done <"$dir/pids"
    fi
    rm -rf "$dir"
    if [[ -f $pointer && "$(cat "$pointer")" == "$dir" ]]; then
        rm -f "$pointer"
    fi
}

cmd_env() {
    dir="$(state_dir)" || die "no server started (run: $0 start)"
    [[ -f $dir/env ]] || die "no server in '$dir'"
    cat "$dir/env"
}

cmd_status() {
    dir="$(state_dir)" || return 1
    [[ -f $dir/env ]] || return 1
    local port
    port="$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$dir/env")"
    check_alive && CAIRN_S3_START_TIMEOUT=2 s3_probe "$port" >/dev/null 2>&1
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    status) cmd_status ;;
    -h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
    *) die "usage: $0 start [--bucket NAME] | env | stop | status" ;;
esac
