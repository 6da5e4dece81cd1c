# Shared by the S3 tests (t3000, t3101): one real S3 server for the whole
# file (OpenStack Swift with s3api, started by scripts/s3-server.sh: it
# takes seconds), its settings in each test, and awscli pointed at it.
# Load after helpers; call s3_setup_file, s3_teardown_file and s3_setup
# from the file's setup_file, teardown_file and setup.

# s3_setup_file NAME: check the server's programs are installed, start it.
s3_setup_file() {
    local b
    for b in swift-proxy-server swift-object-server memcached; do
        command -v "$b" >/dev/null || {
            echo "$1 needs $b: run scripts/install-deps.sh" >&2
            return 1
        }
    done
    export CAIRN_S3_DIR="$BATS_FILE_TMPDIR/s3"
    "$REPO_ROOT/scripts/s3-server.sh" start --bucket cairn-test >"$BATS_FILE_TMPDIR/start.log" 2>&1 ||
        { cat "$BATS_FILE_TMPDIR/start.log" >&2; return 1; }
}

s3_teardown_file() {
    "$REPO_ROOT/scripts/s3-server.sh" stop
}

# s3_setup: the server's settings exported; REMOTE, a prefix of the bucket
# per test, so tests do not see each other's objects.
s3_setup() {
    eval "$("$REPO_ROOT/scripts/s3-server.sh" env)"
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION CAIRN_S3_ENDPOINT
    REMOTE="s3://cairn-test/t$BATS_TEST_NUMBER"
}

# aws_cli ARGS...: awscli against the server, no configuration of the user's.
aws_cli() {
    local aws=/usr/bin/aws
    [[ -x $aws ]] || aws=aws
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        "$aws" --endpoint-url "$CAIRN_S3_ENDPOINT" "$@"
}
