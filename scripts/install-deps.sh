#!/usr/bin/env bash
#
# Install the Debian 12 packages that cairn needs, in three sets, and only
# those that are missing:
#
#   build   compiler, meson and the libraries of SPEC section 8, plus the few
#           tools `make demo` runs (curl, jq, python3, b3sum)
#   test    what `make check` adds: bats, clang's libFuzzer and
#           sanitizer runtimes, the format check, and the real servers the
#           tests start (Swift's S3, memcached, Prometheus's promtool)
#   bench   what `make bench` adds: the peers cairn is measured against
#
# `make` and `make demo` install `build`, `make check` `build test`, `make
# bench` `build bench`, each once per change of this file (a stamp in
# build/ keyed on its hash and the sets). .ci/run installs `build test`
# before anything else (a fresh machine may not even have make). With
# nothing missing it prints nothing and touches nothing, so it is cheap and
# idempotent.
#
# Runs as root, or through sudo when not. Package lists are refreshed only
# when something has to be installed. Services that packages would start on
# installation (nginx, memcached, prometheus...) are not started: tests and
# benchmarks start their own instances on 127.0.0.1 by PID.
#
# Usage: scripts/install-deps.sh [SET...]          install what is missing
#                                                  (default: build test)
#        scripts/install-deps.sh --check [SET...]  list what is missing, exit 1 if any
#        scripts/install-deps.sh --list [SET...]   print the packages, one a line
#
# To add a dependency, add its Debian package name on its own line in the
# right set below (every name was checked with `apt-cache policy` on
# Debian 12 "bookworm").
set -euo pipefail

build_packages=(
    # compiler, meson, and the libraries of SPEC section 8
    make
    gcc
    pkg-config
    meson
    ninja-build
    git
    libzstd-dev
    libsqlite3-dev
    sqlite3
    libcurl4-openssl-dev
    ca-certificates
    libssl-dev
    libuv1-dev
    node-llhttp
    librust-blake3-dev
    libjansson-dev
    libyaml-dev
    libsodium-dev
    libopenblas-dev
    libpq-dev
    # the unit tests are part of the default build (meson's tests option)
    libcmocka-dev
    # what scripts/demo.sh runs besides cairn
    python3
    curl
    jq
    b3sum
)
test_packages=(
    # bats, clang's libFuzzer and sanitizer runtimes, format check
    bats
    bats-assert
    bats-support
    clang-14
    libclang-rt-14-dev
    llvm-14
    clang-format-14
    xxd
    # stress-ng loads every core while scripts/stress-tests.sh repeats e2e files
    stress-ng
    # remotes: OpenStack Swift with s3api as the S3 test server, awscli to cross-check
    swift-proxy
    swift-account
    swift-container
    swift-object
    memcached
    awscli
    # serving: promtool checks the /metrics exposition format
    prometheus
)
bench_packages=(
    # the peers cairn is measured against (SPEC section 9)
    git-lfs
    restic
    borgbackup
    casync
    zstd
    rclone
    nginx-light
    wrk
    time
    hyperfine
)

mode=install
case "${1:-}" in
    --check) mode=check; shift ;;
    --list) mode=list; shift ;;
    -h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install-deps: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac
sets=("$@")
((${#sets[@]})) || sets=(build test)
packages=()
for set in "${sets[@]}"; do
    case $set in
        build) packages+=("${build_packages[@]}") ;;
        test) packages+=("${test_packages[@]}") ;;
        bench) packages+=("${bench_packages[@]}") ;;
        *) echo "install-deps: unknown set '$set': use build, test or bench" >&2; exit 2 ;;
    esac
done
if [[ $mode == list ]]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

missing=()
for p in "${packages[@]}"; do
    # "install ok unpacked" or "half-configured" count as missing: apt-get
    # install finishes configuring them.
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == *" ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $mode == check ]]; then
    printf 'install-deps: missing: %s\n' "${missing[*]}"
    exit 1
fi

sudo=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
        echo "install-deps: not root and sudo is missing; as root run: $0" >&2
        exit 1
    fi
    sudo=(sudo -n)
    # Without a terminal sudo cannot ask for a password: fail with a hint
    # rather than hang (CI has no stdin).
    if ! sudo -n true 2>/dev/null; then
        if [[ -t 0 ]]; then
            sudo=(sudo)
        else
            echo "install-deps: sudo needs a password and there is no terminal; run: sudo $0" >&2
            exit 1
        fi
    fi
fi

echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"

# Keep package post-install scripts from starting daemons: policy-rc.d
# answering 101 ("action forbidden") is Debian's documented switch. Only a
# file we created is removed again.
policy=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if ((created_policy)); then
        "${sudo[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from cairn scripts/install-deps.sh\nexit 101\n' |
        "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    created_policy=1
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
"${apt[@]}" update -qq
"${apt[@]}" install -y --no-install-recommends "${missing[@]}"

# Verify rather than trust apt's exit status for every name.
still=()
for p in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == *" ok installed" ]] || still+=("$p")
done
if ((${#still[@]})); then
    echo "install-deps: still missing after apt-get install: ${still[*]}" >&2
    exit 1
fi
echo "install-deps: done"
