#!/usr/bin/env bats
# t3101: push, pull and clone against a real S3 server (OpenStack Swift with
# s3api, started once for the file by scripts/s3-server.sh): bit-exact
# clones, --include, only new chunks sent, concurrent pushers, a server
# killed mid-push, corruption on the remote, a wrong secret, and awscli
# seeing what cairn pushed.

load helpers
load s3_helpers

bats_require_minimum_version 1.5.0

setup_file() {
    s3_setup_file t3101
}

teardown_file() {
    s3_teardown_file
}

setup() {
    cairn_setup
    s3_setup
}

json_field() {
    python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

make_origin() {
    cairn init a >/dev/null
    cd a
    cairn-test-tool gen-safetensors m.safetensors 1 40 65536 f32
    make_file extra/notes.bin 300K 7
    cairn add m.safetensors extra >/dev/null
    cairn commit m -m one >/dev/null
    cairn remote add origin "$REMOTE" "$@" >/dev/null
    cd ..
}

@test "push, clone elsewhere, checkout bit-exact; awscli lists what cairn pushed" {
    make_origin
    cd a
    run --separate-stderr cairn push --json
    assert_success
    [[ $(json_field packs_sent <<<"$output") -eq 1 ]]
    run --separate-stderr cairn push --json
    assert_equal "$(json_field bytes_sent <<<"$output")" 0
    run aws_cli s3 ls --recursive "s3://cairn-test/t$BATS_TEST_NUMBER/"
    assert_success
    assert_line --regexp " t[0-9]+/packs/pack-[0-9a-f]{64}\.pack$"
    assert_line --regexp " t[0-9]+/packs/pack-[0-9a-f]{64}\.idx$"
    assert_line --regexp " t[0-9]+/versions/$(cairn show m --json | json_field id)\.json$"
    cd ..
    run cairn clone "$REMOTE" b
    assert_success
    cd b
    run cairn checkout m --to out
    assert_success
    files_equal out/m.safetensors ../a/m.safetensors
    files_equal out/extra/notes.bin ../a/extra/notes.bin
}

@test "pull --include over S3 fetches only the selected paths' chunks" {
    make_origin
    (cd a && cairn push >/dev/null)
    cairn init c >/dev/null
    cd c
    cairn remote add origin "$REMOTE" >/dev/null
    run --separate-stderr cairn pull --include 'extra/*' --json
    assert_success
    [[ $(json_field bytes_received <<<"$output") -lt 1000000 ]]
    run cairn checkout m --to o --include extra
    assert_success
    files_equal o/extra/notes.bin ../a/extra/notes.bin
}

@test "a version with 10% of tensors changed pushes only its new chunks to S3" {
    make_origin
    cd a
    cairn push >/dev/null
    cairn-test-tool gen-safetensors new.safetensors 2 4 65536 f32
    python3 - m.safetensors new.safetensors <<'PY'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
    return b, json.loads(b[8:8 + n]), 8 + n
old, oh, ob = load(sys.argv[1]); new, nh, nb = load(sys.argv[2])
out = bytearray(old)
for k, src in zip([k for k in oh if k != '__metadata__'][:4], [k for k in nh if k != '__metadata__']):
    a, b = oh[k]['data_offsets']; c, d = nh[src]['data_offsets']
    out[ob + a:ob + b] = new[nb + c:nb + d]
open(sys.argv[1], 'wb').write(out)
PY
    cairn add m.safetensors >/dev/null
    cairn commit m -m two >/dev/null
    stored=$(cairn show m@v2 --json | json_field stored_bytes)
    run --separate-stderr cairn push --json
    assert_success
    sent=$(json_field bytes_sent <<<"$output")
    [[ $sent -le $((stored * 105 / 100 + 16384)) ]]
}

@test "two clones pushing to S3 concurrently lose nothing" {
    make_origin
    (cd a && cairn push >/dev/null)
    cairn clone "$REMOTE" x >/dev/null
    cairn clone "$REMOTE" y >/dev/null
    for d in x y; do
        (cd $d && make_file w-$d.bin 2M $RANDOM && cairn add w-$d.bin >/dev/null &&
            cairn commit m -m "from $d" >/dev/null)
    done
    (cd x && cairn push >../px.log 2>&1) &
    p1=$!
    (cd y && cairn push >../py.log 2>&1) &
    p2=$!
    wait $p1
    wait $p2
    cairn clone "$REMOTE" z >/dev/null
    cd z
    run cairn log m
    assert_output --partial "from x"
    assert_output --partial "from y"
    run cairn checkout "$(cd ../y && cairn show m --json | json_field id)" --to oy
    assert_success
    files_equal oy/w-y.bin ../y/w-y.bin
}

@test "killing the S3 server mid-push, then re-running, completes and resends no finished part" {
    cairn init a >/dev/null
    cd a
    make_file big.bin 150M 11
    cairn add big.bin >/dev/null
    cairn commit m -m big >/dev/null
    cairn remote add origin "$REMOTE" --concurrency 1 >/dev/null
    dir=$CAIRN_S3_DIR
    count_data() { find "$dir/srv" -name '*.data' 2>/dev/null | wc -l; }
    before=$(count_data)
    run_bg ../push1.log cairn push
    # Kill the proxy once two parts of the first multipart upload are stored.
    for ((i = 0; i < 3000; i++)); do
        (($(count_data) >= before + 4)) && break
        kill -0 "$BG_PID" 2>/dev/null || break
        sleep 0.02
    done
    # Kill the proxy (the last PID the script started), by PID.
    proxy=$(tail -1 "$dir/pids")
    kill -KILL "$proxy"
    wait "$BG_PID" || true
    run cat ../push1.log
    assert_output --partial "cannot reach"
    # Restart the proxy on the same port and data.
    swift-proxy-server "$dir/etc/proxy-server.conf" >"$dir/log/proxy2.log" 2>&1 </dev/null &
    newpid=$!
    sed -i "\$s/.*/$newpid/" "$dir/pids"
    wait_until 60 curl -sf "$CAIRN_S3_ENDPOINT/healthcheck"
    id=$(aws_cli s3api list-multipart-uploads --bucket cairn-test --prefix "t$BATS_TEST_NUMBER/" \
        --query 'Uploads[0].UploadId' --output text)
    key=$(aws_cli s3api list-multipart-uploads --bucket cairn-test --prefix "t$BATS_TEST_NUMBER/" \
        --query 'Uploads[0].Key' --output text)
    [[ -n $id && $id != None ]] || fail "the push finished before the server was killed"
    parts=$(aws_cli s3api list-parts --bucket cairn-test --key "$key" --upload-id "$id" \
        --query "length(Parts || \`[]\`)" --output text)
    [[ $parts =~ ^[0-9]+$ && $parts -ge 1 ]] || fail "no part was stored before the kill"
    run --separate-stderr cairn push --json
    assert_success
    sent=$(json_field bytes_sent <<<"$output")
    packs=$(json_field pack_bytes <<<"$output")
    echo "parts done before: $parts; sent $sent of $packs pack bytes" >&3
    [[ $sent -le $((packs - parts * 16 * 1048576 + 1048576)) ]]
    cd ..
    run cairn clone "$REMOTE" b
    assert_success
    cd b
    run cairn checkout m --to out
    assert_success
    files_equal out/big.bin ../a/big.bin
}

@test "a corrupted object on S3 is detected on pull and nothing corrupt is written" {
    make_origin
    (cd a && cairn push >/dev/null)
    key=$(aws_cli s3 ls --recursive "s3://cairn-test/t$BATS_TEST_NUMBER/packs/" | awk '/\.pack$/ {print $4}')
    aws_cli s3 cp "s3://cairn-test/$key" p.pack >/dev/null
    cairn-test-tool flip p.pack 200000
    aws_cli s3 cp p.pack "s3://cairn-test/$key" >/dev/null
    cairn init c >/dev/null
    cd c
    cairn remote add origin "$REMOTE" >/dev/null
    run -1 cairn pull
    assert_output --regexp "cairn: remote object 'packs/pack-[0-9a-f]+\.pack' is corrupt"
    run cairn fsck
    assert_success
}

@test "a wrong secret gives a clear 403 message" {
    make_origin
    cd a
    AWS_SECRET_ACCESS_KEY=wrong run -1 --separate-stderr cairn push
    [[ $stderr == "cairn: access denied by '$CAIRN_S3_ENDPOINT' for "*"(HTTP 403 SignatureDoesNotMatch"* ]]
    [[ $stderr != *wrong* ]]
}
