#!/usr/bin/env bats
# t3100: push, pull and clone over a file:// remote: bit-exact clones,
# --include, only new chunks sent, concurrent pushers, aliases shared like
# git branches, and corruption on the remote detected on pull.

load helpers

bats_require_minimum_version 1.5.0

# A repository `a` with one model version (40 fp32 tensors of 64 Ki elements
# plus an opaque file) pushed to $REMOTE.
make_origin() {
    REMOTE="file://$TEST_DIR/remote"
    cairn init a >/dev/null
    cd a
    cairn-test-tool gen-safetensors m.safetensors 1 40 65536 f32
    make_file extra/notes.bin 300K 7
    cairn add m.safetensors extra >/dev/null
    cairn commit m -m one >/dev/null
    cairn remote add origin "$REMOTE" >/dev/null
    cd ..
}

json_field() {
    python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

@test "remote add, list and remove; bad URLs and names are usage errors" {
    cairn init r >/dev/null
    cd r
    run cairn remote add origin file:///tmp/somewhere
    assert_success
    run cairn remote add backup s3://bucket/pre --endpoint http://127.0.0.1:9 --region eu-west-1
    assert_success
    run cairn remote list
    assert_line --regexp '^backup +s3://bucket/pre  endpoint=http://127.0.0.1:9  region=eu-west-1$'
    run cairn remote list --json
    assert_output --partial '"url": "file:///tmp/somewhere"'
    run -2 cairn remote add x ftp://nowhere
    run -2 cairn remote add Bad file:///x
    run -1 cairn remote add origin file:///y
    assert_output --partial "remote 'origin' exists already"
    run cairn remote remove backup
    assert_success
    run -1 cairn remote remove backup
    assert_output --partial "no remote 'backup'"
    # Nothing secret is ever stored: credentials come from the environment.
    run sqlite3 .cairn/cairn.db 'select * from remotes'
    refute_output --partial "testing"
}

@test "credentials in a remote URL are refused; old ones are listed redacted; the registry is 0600" {
    cairn init r >/dev/null
    cd r
    [ "$(stat -c %a .cairn/cairn.db)" = 600 ]
    run --separate-stderr cairn remote add s s3://bucket --endpoint http://AKIAKEY:s3cr3t@127.0.0.1:9
    assert_failure 2
    [[ $stderr == *"credentials in a URL"*"AWS_ACCESS_KEY_ID"* ]]
    [[ $stderr != *s3cr3t* ]]
    run -2 cairn remote add s s3://AKIAKEY:s3cr3t@bucket/pre
    run -2 cairn remote add s 'file://user:pw@/tmp/x'
    # an '@' after the host is not userinfo
    run cairn remote add ok s3://bucket/pre --endpoint 'http://127.0.0.1:9/path@x'
    assert_success
    [ -z "$(sqlite3 .cairn/cairn.db "select name from remotes where name = 's'")" ]
    # An entry stored by an older cairn is shown without its secret.
    sqlite3 .cairn/cairn.db "insert into remotes(name, url, endpoint) values('old',
        's3://bucket', 'http://AKIAKEY:s3cr3t@127.0.0.1:9/')"
    run cairn remote list
    assert_success
    assert_line --regexp '^old +s3://bucket  endpoint=http://\*\*\*@127.0.0.1:9/$'
    refute_output --partial s3cr3t
    run cairn remote list --json
    refute_output --partial s3cr3t
    [ "$(jq -r '.[] | select(.name == "old") | .endpoint' <<<"$output")" = 'http://***@127.0.0.1:9/' ]
}

@test "push, clone elsewhere, checkout bit-exact; a second push sends nothing" {
    make_origin
    cd a
    run --separate-stderr cairn push --json
    assert_success
    [[ $(json_field chunks_sent <<<"$output") -gt 40 ]]
    [[ -d ../remote/packs && -d ../remote/versions ]]
    run --separate-stderr cairn push --json
    assert_success
    assert_equal "$(json_field bytes_sent <<<"$output")" 0
    assert_equal "$(json_field chunks_sent <<<"$output")" 0
    cd ..
    run cairn clone "$REMOTE" b
    assert_success
    cd b
    run cairn checkout m@v1 --to out
    assert_success
    files_equal out/m.safetensors ../a/m.safetensors
    files_equal out/extra/notes.bin ../a/extra/notes.bin
    assert_equal "$(cairn show m --json | json_field id)" "$(cd ../a && cairn show m --json | json_field id)"
    run cairn fsck
    assert_success
}

@test "pull --include fetches only the chunks of the selected paths" {
    make_origin
    (cd a && cairn push >/dev/null)
    cairn init c >/dev/null
    cd c
    cairn remote add origin "$REMOTE" >/dev/null
    run --separate-stderr cairn pull --include extra --json
    assert_success
    [[ $(json_field bytes_received <<<"$output") -lt 1000000 ]]
    run cairn checkout m --to o --include extra
    assert_success
    files_equal o/extra/notes.bin ../a/extra/notes.bin
    run -1 cairn checkout m --to o2
    # The rest comes with a later pull.
    run cairn pull
    assert_success
    run cairn checkout m --to o3
    assert_success
    files_equal o3/m.safetensors ../a/m.safetensors
}

@test "a version with 10% of tensors changed pushes only its new chunks" {
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
names = [k for k in oh if k != '__metadata__'][:4]
for k, src in zip(names, [k for k in nh if k != '__metadata__']):
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
    echo "sent $sent stored $stored" >&3
    # New chunks at most 1.05x the new stored bytes, plus small metadata.
    [[ $sent -le $((stored * 105 / 100 + 16384)) ]]
    [[ $sent -gt $((stored / 2)) ]]
}

@test "two clones pushing different versions of one model concurrently lose nothing" {
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
    assert_success
    assert_output --partial "from x"
    assert_output --partial "from y"
    # Both were v2 in their clones: one keeps v2, the other gets the next number.
    [[ $(cairn log m | wc -l) -eq 3 ]]
    run cairn checkout "$(cd ../x && cairn show m --json | json_field id)" --to ox
    assert_success
    files_equal ox/w-x.bin ../x/w-x.bin
    run cairn checkout "$(cd ../y && cairn show m --json | json_field id)" --to oy
    assert_success
    files_equal oy/w-y.bin ../y/w-y.bin
}

@test "aliases travel as remote-tracking aliases; overwriting another's change needs --force" {
    make_origin
    (cd a && cairn alias set m production m@v1 >/dev/null && cairn push >/dev/null)
    cairn clone "$REMOTE" b >/dev/null
    run cairn -C b alias list m
    assert_output --partial production
    # a moves production to v2; b, not having pulled, moves it elsewhere.
    (cd a && make_file w2.bin 1M 3 && cairn add w2.bin >/dev/null && cairn commit m -m two >/dev/null &&
        cairn alias set m production m@v2 >/dev/null && cairn push >/dev/null)
    cd b
    make_file w3.bin 1M 4
    cairn add w3.bin >/dev/null
    cairn commit m -m three >/dev/null
    cairn alias set m production m@v2 >/dev/null
    run -1 cairn push
    assert_output --partial "alias 'm@production' was changed on 'origin'"
    run cairn push --force --json
    assert_success
    assert_output --partial '"aliases_sent": 1'
    # a sees b's value after a pull.
    cd ../a
    run cairn pull
    assert_success
}

@test "NAME@REMOTE/ALIAS resolves to where the alias stood on the remote" {
    make_origin
    (cd a && cairn alias set m production m@v1 >/dev/null && cairn push >/dev/null)
    v1=$(cd a && cairn show m@v1 --json | jq -r .id)
    cd a
    run cairn show m@origin/production --json
    assert_success
    [[ $(jq -r .id <<<"$output") == "$v1" ]]
    # A local move does not move the tracking alias until the next push.
    make_file w2.bin 1M 3
    cairn add w2.bin >/dev/null
    cairn commit m -m two >/dev/null
    cairn alias set m production m@v2 >/dev/null
    run cairn show m@origin/production --json
    [[ $(jq -r .id <<<"$output") == "$v1" ]]
    cairn push >/dev/null
    run cairn show m@origin/production --json
    [[ $(jq -r .id <<<"$output") == "$(cairn show m@v2 --json | jq -r .id)" ]]
    run -1 cairn show m@origin/staging
    assert_output "cairn: no remote-tracking alias 'origin/staging' of 'm' (push or pull 'origin' first)"
    run -1 cairn show m@elsewhere/production
    assert_output --partial "no remote-tracking alias 'elsewhere/production'"
    run -2 cairn show 'm@origin/Bad Alias'
    assert_output --partial "invalid ref"
}

@test "a corrupted object on the remote is detected on pull; nothing corrupt is written" {
    make_origin
    (cd a && cairn push >/dev/null)
    pack=$(ls remote/packs/*.pack | head -1)
    chmod u+w "$pack"
    cairn-test-tool flip "$pack" 200000
    cairn init c >/dev/null
    cd c
    cairn remote add origin "$REMOTE" >/dev/null
    run -1 cairn pull
    assert_output --regexp "cairn: remote object 'packs/pack-[0-9a-f]+\.pack' is corrupt"
    [[ ${#lines[@]} -eq 1 ]]
    run cairn fsck
    assert_success
    run cairn log
    refute_output --partial "m@v1"
}

@test "a version record that does not hash to its id is refused" {
    make_origin
    (cd a && cairn push >/dev/null)
    rec=$(ls remote/versions/*.json)
    chmod u+w "$rec"
    sed -i 's/\\"message\\":\\"one\\"/\\"message\\":\\"two\\"/' "$rec"
    run -1 cairn clone "$REMOTE" c
    assert_output --partial "is corrupt: its record does not hash to its id"
}

@test "push and pull: options anywhere, '--' ends them, a missing value is a usage error" {
    make_origin
    cd a
    run --separate-stderr cairn push origin m --json
    assert_success
    [ "$(jq -r .versions_sent <<<"$output")" = 1 ]
    # After '--' "--json" is a REF, not the option.
    run -2 --separate-stderr cairn push origin -- --json
    assert_equal "$output" ""
    assert_equal "$stderr" "cairn: invalid ref '--json': use NAME, NAME@vN, NAME@ALIAS, NAME@TAG or an id prefix of 7+ hex digits"
    run -2 --separate-stderr cairn push --force=yes
    assert_equal "$stderr" "cairn: --force takes no value (see 'cairn push --help')"
    cd ..
    cairn init c >/dev/null
    cd c
    cairn remote add origin "$REMOTE" >/dev/null
    run --separate-stderr cairn pull origin m --include extra --json
    assert_success
    jq -e '.versions_new == 1 and .bytes_received < 1000000' <<<"$output"
    run -1 --separate-stderr cairn pull origin -- --include
    assert_equal "$stderr" "cairn: '--include' is not on remote 'origin'"
    run -2 --separate-stderr cairn pull origin m --include
    assert_equal "$stderr" "cairn: --include needs a value (GLOB) (see 'cairn pull --help')"
}

@test "a failed clone removes what it created, so a retry is clean; a pre-existing directory is kept" {
    make_origin
    (cd a && cairn push >/dev/null)
    rec=$(ls remote/versions/*.json)
    chmod u+w "$rec"
    cp "$rec" rec.good
    sed -i 's/\\"message\\":\\"one\\"/\\"message\\":\\"two\\"/' "$rec"
    run -1 cairn clone "$REMOTE" c
    assert_output --partial "is corrupt"
    [ ! -e c ]
    run -1 cairn clone "$REMOTE" new/deeper/c
    [ ! -e new ]
    mkdir mine && echo keep > mine/notes.txt
    run -1 cairn clone "$REMOTE" mine
    assert_output --partial "is corrupt"
    [ "$(ls -A mine)" = notes.txt ] && [ "$(cat mine/notes.txt)" = keep ]
    # A directory that is already a repository is left alone entirely.
    cairn init r >/dev/null
    run -1 cairn clone "$REMOTE" r
    assert_output --partial "already a cairn repository"
    [ -d r/.cairn ]
    # Once the remote is repaired, the same commands succeed.
    cp rec.good "$rec"
    run cairn clone "$REMOTE" c
    assert_success
    run cairn clone "$REMOTE" mine
    assert_success
    [ -d mine/.cairn ] && [ "$(cat mine/notes.txt)" = keep ]
}

@test "clone refuses credentials in its URL or endpoint" {
    run --separate-stderr cairn clone s3://bucket/x c --endpoint http://KEY:SECRET@127.0.0.1:9
    assert_failure 2
    [[ $stderr == *"credentials in a URL"* ]]
    [ ! -e c ]
}

@test "push removes temp files a killed push left on the remote over an hour ago" {
    make_origin
    (cd a && cairn push >/dev/null)
    mkdir -p remote/packs remote/versions
    echo stale > remote/packs/.cairn-tmp.old111
    echo stale > remote/versions/.cairn-tmp.old222
    echo fresh > remote/packs/.cairn-tmp.new333
    touch -d '2 hours ago' remote/packs/.cairn-tmp.old111 remote/versions/.cairn-tmp.old222
    touch -d '10 minutes ago' remote/packs/.cairn-tmp.new333
    # A pull (read only) never removes anything.
    (cd a && cairn pull >/dev/null)
    [ -e remote/packs/.cairn-tmp.old111 ]
    cd a
    make_file extra/more.bin 100K 9
    cairn add extra >/dev/null && cairn commit m -m two >/dev/null
    run cairn push
    assert_success
    cd ..
    [ ! -e remote/packs/.cairn-tmp.old111 ]
    [ ! -e remote/versions/.cairn-tmp.old222 ]
    [ -e remote/packs/.cairn-tmp.new333 ]
    run cairn clone "$REMOTE" b
    assert_success
}
