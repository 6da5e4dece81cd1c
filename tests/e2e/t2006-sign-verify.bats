#!/usr/bin/env bats
# t2006: keygen, sign and verify - a good signature, a tampered one, a key
# that is not trusted, and keys that are never overwritten.

load helpers

bats_require_minimum_version 1.5.0

setup() {
    cairn_setup
    unset CAIRN_SIGNING_KEY XDG_CONFIG_HOME
    cairn init >/dev/null
    echo one > w.bin
    cairn add w.bin >/dev/null
    cairn commit bert -m one >/dev/null
}

@test "a version signed by a trusted key verifies; the key use is audited" {
    run cairn keygen --trust
    assert_success
    [ "$(stat -c %a "$HOME/.config/cairn/signing.key")" = 600 ]
    run cairn verify bert
    assert_failure 3
    assert_output --partial "not signed"
    run cairn sign bert
    assert_success
    run cairn verify bert
    assert_success
    assert_output --partial "signature valid"
    run cairn verify bert --json
    [ "$(jq -r .status <<<"$output")" = valid ]
    run cairn audit --json
    [ "$(jq -r '.[-1].action' <<<"$output")" = sign ]
}

@test "a tampered signature fails verify (exit 3)" {
    cairn keygen --trust >/dev/null
    cairn sign bert >/dev/null 2>&1
    local sig
    sig=$(find .cairn/signatures -name '*.sig' | head -1)
    [ -n "$sig" ]
    chmod u+w "$sig"
    # flip the last hex digit of the signature
    python3 - "$sig" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read().rstrip("\n")
s = s[:-1] + ("0" if s[-1] != "0" else "1")
open(p, "w").write(s + "\n")
PY
    run cairn verify bert
    assert_failure 3
    run cairn verify bert --json
    [ "$(jq -r .status <<<"$output")" = invalid ]
}

@test "a signature by a key that is not trusted fails verify" {
    cairn keygen --trust >/dev/null
    cairn keygen --key other.key >/dev/null
    run cairn sign bert --key other.key
    assert_success
    assert_output --partial "not trusted"
    run cairn verify bert
    assert_failure 3
    assert_output --partial "untrusted"
}

@test "keygen never overwrites a key" {
    cairn keygen --key k.key >/dev/null
    cp k.key k.key.orig
    run cairn keygen --key k.key
    assert_failure
    cmp k.key k.key.orig
}

@test "keygen, sign and verify --json; options anywhere; usage errors" {
    run cairn keygen --json --trust
    assert_success
    local id
    id=$(jq -r .key_id <<<"$output")
    [[ $id =~ ^[0-9a-f]{16}$ ]]
    [ "$(jq -r .secret_key <<<"$output")" = "$HOME/.config/cairn/signing.key" ]
    [ "$(jq -r .public_key <<<"$output")" = "$HOME/.config/cairn/signing.pub" ]
    [ "$(jq -r .trusted <<<"$output")" = "$(pwd -P)/.cairn/trusted_keys/$id.pub" ]
    [ -f ".cairn/trusted_keys/$id.pub" ]
    run cairn keygen --key other.key --json
    assert_success
    [ "$(jq -r .secret_key <<<"$output")" = other.key ]
    [ "$(jq -r .public_key <<<"$output")" = other.pub ]
    [ "$(jq -r .trusted <<<"$output")" = null ]
    run --separate-stderr cairn sign bert --json --key other.key
    assert_success
    [ "$(jq -r .status <<<"$output")" = untrusted ]
    [[ $stderr == *"is not trusted"* ]]
    run cairn sign --json bert
    assert_success
    [ "$(jq -r .model <<<"$output")" = bert ]
    [ "$(jq -r .version <<<"$output")" = 1 ]
    [ "$(jq -r .id <<<"$output")" = "$(cairn show bert --json | jq -r .id)" ]
    [ "$(jq -r .key <<<"$output")" = "$id" ]
    [ "$(jq -r .status <<<"$output")" = valid ]
    run cairn verify --json bert
    assert_success
    [ "$(jq -r .detail <<<"$output")" = "key $id" ]
    run -2 cairn sign bert --key
    assert_output "cairn: --key needs a value (PATH) (see 'cairn sign --help')"
    run -2 cairn keygen --key=
    assert_output "cairn: --key needs a path (see 'cairn keygen --help')"
    run -2 cairn verify
    assert_output "cairn: missing REF (see 'cairn verify --help')"
    run -2 cairn verify bert extra
    assert_output "cairn: unexpected argument 'extra' (see 'cairn verify --help')"
}
