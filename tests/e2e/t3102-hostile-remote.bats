#!/usr/bin/env bats
# t3102: what a remote may send (docs/remotes.md, "What a remote may send"),
# one test per rule, against a file:// remote made hostile by hand and by
# cairn-hostile-remote (crafted trees with valid packs, idx and records):
# reserved, control-character and non-UTF-8 paths; aliases naming another
# model's version; metrics annotations outside the version id; sequence
# numbers that jump; names the CLI refuses; and racing alias pushes.

load helpers

bats_require_minimum_version 1.5.0

# Repository `a` with victim@v1 (two files) pushed to $REMOTE_DIR.
make_origin() {
    REMOTE_DIR="$TEST_DIR/remote"
    REMOTE="file://$REMOTE_DIR"
    cairn init a >/dev/null
    cd a
    make_file model.bin 200K 1
    make_file sub/config 1K 2
    cairn add model.bin sub >/dev/null
    cairn commit victim -m one --metrics <(echo '{"accuracy": 0.5}') >/dev/null
    cairn remote add origin "$REMOTE" >/dev/null
    cairn push >/dev/null
    cd ..
    V1=$(cairn -C a show victim@v1 --json | jq -r .id)
}

# A version of victim whose sub/config is renamed to $1 (escapes: \n \e \xNN).
hostile_path() {
    chmod -R u+w "$REMOTE_DIR"
    cairn-hostile-remote retree a "$REMOTE_DIR" "$V1" "sub/config=$1"
}

@test "paths into .cairn or .git, at any depth and in any case, are refused on clone and pull" {
    make_origin
    for p in .cairn/config .cairn/cairn.db .cairn/trusted_keys/0123456789abcdef.pub \
        .git/hooks/post-checkout deep/.GIT/config x/.Cairn/y; do
        id=$(hostile_path "$p")
        run -1 cairn clone "$REMOTE" "c-$RANDOM"
        assert_output --partial "reserved component"
        [[ ${#lines[@]} -eq 1 ]]
        rm -f "$REMOTE_DIR/versions/$id.json"
    done
    # An existing clone pulling such a version keeps its registry and config.
    cairn clone "$REMOTE" b >/dev/null
    cp b/.cairn/config config.before
    hostile_path .cairn/config >/dev/null
    run -1 cairn -C b pull
    assert_output --partial "reserved component '.cairn'"
    cmp b/.cairn/config config.before
    run cairn -C b fsck
    assert_success
    run cairn -C b log victim
    refute_output --partial "victim@v2"
}

@test "control characters and invalid UTF-8 in paths are refused and never printed raw" {
    make_origin
    for p in 'a\nb' 'x\e[31mred' 'bad\xffname' 'tab\there' 'del\x7f'; do
        id=$(hostile_path "$p")
        run -1 cairn clone "$REMOTE" "c-$RANDOM"
        assert_output --regexp "(control character|not valid UTF-8)"
        [[ ${#lines[@]} -eq 1 ]]
        [[ $output != *$'\e'* ]]
        rm -f "$REMOTE_DIR/versions/$id.json"
    done
    # A component over 255 bytes.
    id=$(hostile_path "$(printf 'd%.0s' {1..256})/f")
    run -1 cairn clone "$REMOTE" long
    assert_output --partial "component longer than 255 bytes"
}

@test "a remote alias of one model naming another model's version is ignored" {
    make_origin
    (cd a && make_file other.bin 10K 9 && cairn add other.bin >/dev/null &&
        cairn commit other -m o >/dev/null && cairn alias set victim production victim@v1 >/dev/null &&
        cairn push >/dev/null)
    other=$(cairn -C a show other@v1 --json | jq -r .id)
    cairn clone "$REMOTE" b >/dev/null
    # The remote moves victim@production to other@v1, with a well-formed entry.
    prev=$(cd "$REMOTE_DIR" && ls aliases/victim/production/ | tail -1)
    chmod -R u+w "$REMOTE_DIR"
    printf '{"alias":"production","model":"victim","prev":"aliases/victim/production/%s","version":"%s"}' \
        "$prev" "$other" >"$REMOTE_DIR/aliases/victim/production/0000000000000002-ffffffffffffffff.json"
    run cairn -C b pull
    assert_success
    assert_output --partial "ignoring alias 'victim@production' on 'origin': it names a version of model 'other'"
    [[ $(cairn -C b show victim@production --json | jq -r .id) == "$V1" ]]
    [[ $(cairn -C b show victim@origin/production --json | jq -r .id) == "$V1" ]]
    # A fresh clone asked for that alias refuses it.
    cairn init c >/dev/null
    cairn -C c remote add origin "$REMOTE" >/dev/null
    run -1 cairn -C c pull origin victim@production
    assert_output --partial "names a version that is not one of model 'victim'"
}

@test "metrics annotated on a remote version object never pass a gate" {
    make_origin
    obj="$REMOTE_DIR/versions/$V1.json"
    chmod -R u+w "$REMOTE_DIR"
    jq -c '.metrics.f1 = 0.99' "$obj" >obj.tmp && mv obj.tmp "$obj"
    cairn clone "$REMOTE" b >/dev/null
    cd b
    printf 'checks:\n  - {metric: f1, min: 0.9}\n' >gate.yaml
    run cairn show victim@v1 --json
    assert_output --partial '"f1"'
    run -3 cairn gate victim@v1 --policy gate.yaml
    assert_output --partial "f1"
    run -3 cairn promote victim@v1 --to production --policy gate.yaml
    run -1 cairn show victim@production
    # Measured here, the same metric counts.
    cairn eval victim@v1 --cmd 'echo "{\"f1\": 0.95}"' --record >/dev/null
    run cairn gate victim@v1 --policy gate.yaml
    assert_success
}

@test "an alias entry whose sequence number jumps is ignored; push --force still moves the alias" {
    make_origin
    (cd a && cairn alias set victim production victim@v1 >/dev/null && cairn push >/dev/null)
    cairn clone "$REMOTE" b >/dev/null
    chmod -R u+w "$REMOTE_DIR"
    printf '{"alias":"production","model":"victim","prev":null,"version":"%s"}' "$V1" \
        >"$REMOTE_DIR/aliases/victim/production/9999999999999999-0000000000000000.json"
    cd a
    make_file w2.bin 10K 5
    cairn add w2.bin >/dev/null
    cairn commit victim -m two >/dev/null
    cairn alias set victim production victim@v2 >/dev/null
    run cairn push
    assert_success
    assert_output --partial "sequence number jumps"
    ls "$REMOTE_DIR/aliases/victim/production/" | grep -q '^0000000000000002-'
    cd ../b
    run cairn pull
    assert_success
    [[ $(cairn show victim@production --json | jq -r .number) == 2 ]]
    # And --force works on top of it.
    cairn alias set victim production victim@v1 >/dev/null
    run cairn push --force
    assert_success
    ls "$REMOTE_DIR/aliases/victim/production/" | grep -q '^0000000000000003-'
}

@test "alias and tag names the CLI refuses are ignored on pull, with a warning" {
    make_origin
    chmod -R u+w "$REMOTE_DIR"
    mkdir -p "$REMOTE_DIR/aliases/victim/Prod" "$REMOTE_DIR/tags/victim"
    printf '{"alias":"Prod","model":"victim","prev":null,"version":"%s"}' "$V1" \
        >"$REMOTE_DIR/aliases/victim/Prod/0000000000000001-0000000000000000.json"
    printf '{"model":"victim","tag":"BAD TAG","version":"%s"}' "$V1" \
        >"$REMOTE_DIR/tags/victim/BAD TAG.json"
    printf '{"model":"victim","tag":"ok","version":"%s"}' "$V1" >"$REMOTE_DIR/tags/victim/ok.json"
    run cairn clone "$REMOTE" b
    assert_success
    assert_output --partial "ignoring 'aliases/victim/Prod/"
    assert_output --partial "ignoring 'tags/victim/BAD TAG.json'"
    run cairn -C b alias list victim
    refute_output --partial Prod
    run cairn -C b show victim@ok --json
    assert_success
}

@test "two pushes racing on one alias never both succeed, and the remote holds the winner" {
    make_origin
    (cd a && cairn alias set victim production victim@v1 >/dev/null && cairn push >/dev/null)
    cairn clone "$REMOTE" b >/dev/null
    cairn clone "$REMOTE" c >/dev/null
    cairn clone "$REMOTE" d >/dev/null
    for x in b c; do
        (cd $x && for i in 1 2; do make_file "$x$i.bin" 4K "$i$RANDOM" && cairn add "$x$i.bin" >/dev/null &&
            cairn commit victim -m "$x$i" >/dev/null; done && cairn push >/dev/null)
    done
    both=0 raced=0
    for round in $(seq 1 "$(($(stress_iters) / 2 + 5))"); do
        cairn -C b pull >/dev/null 2>&1
        cairn -C c pull >/dev/null 2>&1
        before=$(cd d && cairn pull >/dev/null 2>&1 && cairn show victim@production --json | jq -r .id)
        # Each clone moves the alias to one of its versions that the remote does
        # not hold now, so an exit 0 means its entry was written and won.
        for x in b c; do
            for n in 1 2; do
                v=$(cairn -C $x log victim --json | jq -c --arg m "$x$n" '.[] | select(.message == $m)')
                [[ $(jq -r .id <<<"$v") != "$before" ]] && break
            done
            cairn -C $x alias set victim production "victim@v$(jq -r .number <<<"$v")" >/dev/null
        done
        cairn -C b push >b.out 2>&1 &
        pb=$!
        cairn -C c push >c.out 2>&1 &
        pc=$!
        rb=0 rc=0
        wait "$pb" || rb=$?
        wait "$pc" || rc=$?
        if [[ $rb == 0 && $rc == 0 ]]; then both=$((both + 1)); fi
        if grep -q concurrently b.out c.out; then raced=$((raced + 1)); fi
        cairn -C d pull >d.out 2>&1 || fail "d's pull failed: $(cat d.out)"
        after=$(cairn -C d show victim@production --json | jq -r .id)
        if [[ $rb == 0 ]]; then
            [[ $after == "$(cairn -C b show victim@production --json | jq -r .id)" ]] ||
                fail "round $round: b won, d has $after; b: $(cat b.out) c: $(cat c.out) d: $(cat d.out) remote: $(ls "$REMOTE_DIR/aliases/victim/production/" | tail -3)"
        elif [[ $rc == 0 ]]; then
            [[ $after == "$(cairn -C c show victim@production --json | jq -r .id)" ]] ||
                fail "round $round: c won, d has $after; b: $(cat b.out) c: $(cat c.out) d: $(cat d.out)"
            # The loser's pull says its alias differs and leaves it.
            run cairn -C b pull
            assert_output --partial "left as it is"
        else
            [[ $after == "$before" ]]
        fi
    done
    echo "rounds where the pushes raced on one number: $raced" >&3
    [[ $both -eq 0 ]]
}

@test "a tree asking for a mode other than 0644 or 0755 is refused; checkout applies the umask" {
    make_origin
    for mode in 0777 4755 0600; do
        id=$(hostile_path "sub/config:$mode")
        run -1 cairn clone "$REMOTE" "c-$mode"
        assert_output --partial "damaged manifest: mode ${mode#0} of 'sub/config'"
        rm -f "$REMOTE_DIR/versions/$id.json"
    done
    # An honest 0755 file comes out as 0755 less the umask.
    cd a
    make_file run.sh 1K 3
    make_file data.bin 1K 4
    chmod 0777 run.sh
    chmod 0666 data.bin
    cairn add run.sh data.bin >/dev/null
    cairn commit victim -m exec >/dev/null
    cairn push >/dev/null
    cd ..
    (umask 027 && cairn clone "$REMOTE" b >/dev/null && cairn -C b checkout victim --to co >/dev/null)
    [ "$(stat -c %a co/run.sh)" = 750 ]
    [ "$(stat -c %a co/data.bin)" = 640 ]
}
