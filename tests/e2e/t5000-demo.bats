#!/usr/bin/env bats
# t5000: `make demo` tells its story and every narrated outcome holds
# (the script itself checks each one and exits non-zero otherwise).

load helpers

bats_require_minimum_version 1.5.0

@test "the demo runs end to end and each step behaves as narrated" {
    run bash "$REPO_ROOT/scripts/demo.sh"
    assert_success
    assert_output --partial "added tensor layers.24.weight (BF16"
    assert_output --partial "staged 1 file (1 unchanged): 0 B read"
    assert_output --partial "repository is clean"
    assert_output --partial "is corrupt: hash mismatch"
    assert_output --partial "done: versioned, deduplicated, compressed, verified"
}
