#!/usr/bin/env bats
# t3000: the S3 transport against a real S3 server: OpenStack Swift with
# s3api started by scripts/s3-server.sh (SigV4 really checked), driven
# through cairn-s3-tool (tests/helper/s3-tool.c) and cross-checked with
# awscli. One server for the whole file: it takes seconds to start.

load helpers
load s3_helpers

bats_require_minimum_version 1.5.0

setup_file() {
    s3_setup_file t3000
}

teardown_file() {
    s3_teardown_file
}

setup() {
    cairn_setup
    s3_setup
}

@test "env prints the settings to export" {
    run "$REPO_ROOT/scripts/s3-server.sh" env
    assert_success
    assert_output --regexp '^export AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 CAIRN_S3_ENDPOINT=http://127\.0\.0\.1:[0-9]+$'
    run "$REPO_ROOT/scripts/s3-server.sh" status
    assert_success
}

@test "put, head, get, ranges, list and delete" {
    printf 'hello world' >small
    run cairn-s3-tool "$REMOTE" put a/hello.txt small
    assert_success
    run cairn-s3-tool "$REMOTE" put-buf a/b/note "some text"
    assert_success
    run cairn-s3-tool "$REMOTE" head a/hello.txt
    assert_output 11
    run cairn-s3-tool "$REMOTE" get a/hello.txt
    assert_output "hello world"
    run cairn-s3-tool "$REMOTE" get a/hello.txt 6 5
    assert_output "world"
    run cairn-s3-tool "$REMOTE" list
    assert_success
    assert_output "a/b/note 9
a/hello.txt 11"
    run cairn-s3-tool "$REMOTE" list a/h
    assert_output "a/hello.txt 11"
    # awscli sees the same objects under the prefix.
    run aws_cli s3 ls --recursive "s3://cairn-test/t$BATS_TEST_NUMBER/"
    assert_success
    assert_line --regexp ' 11 t[0-9]+/a/hello\.txt$'
    assert_line --regexp ' 9 t[0-9]+/a/b/note$'
    run cairn-s3-tool "$REMOTE" delete a/hello.txt
    assert_success
    run -3 cairn-s3-tool "$REMOTE" head a/hello.txt
    assert_output --partial "object 'a/hello.txt' not found"
}

@test "a range past the end is reported as a short object" {
    run cairn-s3-tool "$REMOTE" put-buf k "0123456789"
    assert_success
    run -1 --separate-stderr cairn-s3-tool "$REMOTE" get k 5 50
    assert_equal "$stderr" "cairn-s3-tool: object 'k' is shorter than the range asked (5 of 50 bytes)"
}

@test "multipart upload of a big file, verified with awscli" {
    make_file big.bin 13M 1
    run --separate-stderr cairn-s3-tool --stats --part-size 5M --threshold 6M "$REMOTE" put big.bin big.bin
    assert_success
    assert_equal "$stderr" "sent 13631488 received 0"
    run cairn-s3-tool "$REMOTE" get-to big.bin out.bin
    assert_success
    files_equal big.bin out.bin
    run aws_cli s3api head-object --bucket cairn-test --key "t$BATS_TEST_NUMBER/big.bin"
    assert_success
    # A multipart ETag: MD5 of the part MD5s, dash, number of parts.
    assert_output --partial '-3\"'
    assert_output --partial '"ContentLength": 13631488'
    aws_cli s3 cp "s3://cairn-test/t$BATS_TEST_NUMBER/big.bin" aws.bin >/dev/null
    files_equal big.bin aws.bin
}

@test "an interrupted multipart upload resumes and skips the parts already sent" {
    make_file big.bin 12M 2
    local key="t$BATS_TEST_NUMBER/big.bin" id
    # Another client started the upload and sent part 1 before dying.
    id=$(aws_cli s3api create-multipart-upload --bucket cairn-test --key "$key" \
        --query UploadId --output text)
    head -c 5242880 big.bin >part1
    aws_cli s3api upload-part --bucket cairn-test --key "$key" --upload-id "$id" \
        --part-number 1 --body part1 >/dev/null
    run --separate-stderr cairn-s3-tool --stats --part-size 5M --threshold 6M "$REMOTE" put big.bin big.bin
    assert_success
    # Only parts 2 and 3 went over the wire.
    assert_equal "$stderr" "sent $((12 * 1048576 - 5242880)) received 0"
    run cairn-s3-tool "$REMOTE" get big.bin
    cairn-s3-tool "$REMOTE" get-to big.bin out.bin
    files_equal big.bin out.bin
    run aws_cli s3api list-multipart-uploads --bucket cairn-test --prefix "$key"
    refute_output --partial "$id"
}

@test "batches run many transfers in parallel" {
    local f keys=()
    for f in 1 2 3 4 5 6 7 8 9 10; do
        make_file "in/f$f" "$((f * 37))K" "$f"
        keys+=("b/f$f")
    done
    run cairn-s3-tool --concurrency 4 "$REMOTE" batch-put b in/f*
    assert_success
    run cairn-s3-tool "$REMOTE" list b/
    assert_equal "$(echo "$output" | wc -l)" 10
    mkdir out
    run cairn-s3-tool --concurrency 4 "$REMOTE" batch-get out "${keys[@]}"
    assert_success
    for f in 1 2 3 4 5 6 7 8 9 10; do
        files_equal "in/f$f" "out/f$f"
    done
    run -3 cairn-s3-tool "$REMOTE" batch-get out b/f1 b/missing
    assert_output --partial "b/missing: object 'b/missing' not found"
}

@test "a wrong secret gets a clear 403 naming the server's code" {
    run -1 --separate-stderr env AWS_SECRET_ACCESS_KEY=wrong cairn-s3-tool "$REMOTE" put-buf x y
    assert_output ""
    [[ $stderr == "cairn-s3-tool: access denied by '$CAIRN_S3_ENDPOINT' for PUT 'x' (HTTP 403 SignatureDoesNotMatch: "* ]]
    [[ $stderr != *wrong* ]]
    run -1 --separate-stderr env AWS_ACCESS_KEY_ID=nobody:none cairn-s3-tool "$REMOTE" list
    # Swift answers SignatureDoesNotMatch for an unknown user too (AWS: InvalidAccessKeyId).
    [[ $stderr == *"(HTTP 403 SignatureDoesNotMatch: "*"check the credentials"* ]]
}

@test "credentials come from an AWS profile file" {
    mkdir -p "$HOME/.aws"
    printf '[ci]\naws_access_key_id = test:tester\naws_secret_access_key = testing\n' \
        >"$HOME/.aws/credentials"
    run env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=ci \
        cairn-s3-tool "$REMOTE" put-buf p q
    assert_success
    run -1 --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=nope \
        cairn-s3-tool "$REMOTE" put-buf p q
    assert_equal "$stderr" "cairn-s3-tool: no AWS credentials for 's3://cairn-test': set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add profile 'nope' to ~/.aws/credentials"
}

@test "a missing bucket and an unreachable endpoint are named" {
    run -3 --separate-stderr cairn-s3-tool s3://no-such-bucket/x list
    assert_equal "$stderr" "cairn-s3-tool: bucket 'no-such-bucket' does not exist at '$CAIRN_S3_ENDPOINT'"
    local port
    port=$(free_port)
    run -1 --separate-stderr cairn-s3-tool --endpoint "http://127.0.0.1:$port" "$REMOTE" list
    [[ $stderr == "cairn-s3-tool: cannot reach 'http://127.0.0.1:$port': "* ]]
    run -1 --separate-stderr cairn-s3-tool "s3://Bad_Bucket/x" list
    [[ $stderr == *"invalid remote url 's3://Bad_Bucket/x': bucket names are"* ]]
    run -1 --separate-stderr cairn-s3-tool "ftp://x/y" list
    [[ $stderr == *"use file:///path or s3://bucket/prefix"* ]]
}

@test "file:// remotes behave the same" {
    mkdir remote
    printf 'hello world' >small
    run cairn-s3-tool "file://$PWD/remote" put a/hello.txt small
    assert_success
    run cairn-s3-tool "file://$PWD/remote" get a/hello.txt 6 5
    assert_output "world"
    run cairn-s3-tool "file://$PWD/remote" list
    assert_output "a/hello.txt 11"
    run -3 cairn-s3-tool "file://$PWD/remote" head nope
}
