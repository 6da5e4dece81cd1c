#!/usr/bin/env bats
# t2600: dataset validation and drift (issue #8): schemas, failure counts and
# example rows, verdicts stored on the dataset version, the `data: validated`
# gate check, drift between dataset versions.

load helpers

bats_require_minimum_version 1.5.0

# gen_csv FILE ROWS SHIFT: deterministic rows x (0..10 + SHIFT), y (normal-ish), label 0..2.
gen_csv() {
    awk -v n="$2" -v shift="$3" 'BEGIN {
        srand(7); print "id,x,y,label";
        for (i = 1; i <= n; i++) {
            s = 0; for (k = 0; k < 12; k++) s += rand();
            printf "%d,%.4f,%.4f,%d\n", i, rand() * 10 + shift, s - 6 + shift, i % 3
        }
    }' > "$1"
}

setup() {
    cairn_setup
    cairn init >/dev/null
    cat > schema.yaml <<'YAML'
columns:
  id: {type: int, unique: true, required: true}
  x: {type: float, range: [0, 10], max_null_rate: 0.0}
  y: {type: float}
  label: {type: category, values: [0, 1, 2]}
rows: {min: 100}
label: {column: label, min_class_share: 0.2}
YAML
}

@test "a clean dataset passes and the verdict is stored and audited" {
    gen_csv train.csv 600 0
    cairn add train.csv && cairn commit digits --kind dataset -m clean
    run cairn data validate digits --schema schema.yaml
    assert_success
    assert_output --partial "600 rows"
    assert_output --partial "passed"
    run cairn audit --json
    assert_output --partial "data-validate"
}

@test "injected nulls and out-of-range values fail with the right counts and rows" {
    gen_csv bad.csv 300 0
    # Line 11 (row id 10) loses its x; lines 21 and 31 go out of range.
    awk -F, -v OFS=, 'NR == 11 {$2 = ""} NR == 21 || NR == 31 {$2 = 99} {print}' bad.csv > t && mv t bad.csv
    cairn add bad.csv && cairn commit digits --kind dataset -m dirty
    run cairn data validate digits --schema schema.yaml
    assert_failure 3
    assert_output --partial "FAILED"
    assert_output --regexp 'x +range +\[0, 10\] +2/'
    assert_output --regexp 'bad\.csv:21, bad\.csv:31'
    assert_output --regexp 'x +(max_null_rate|null)'
    run cairn data validate digits --schema schema.yaml --json
    assert_failure 3
    [ "$(jq .passed <<<"$output")" = false ]
}

@test "the gate blocks a model trained on a dataset that failed validation" {
    gen_csv good.csv 300 0
    cairn add good.csv && cairn commit ds --kind dataset -m good
    cairn data validate ds --schema schema.yaml
    printf 'checks:\n  - data: validated\n' > policy.yaml
    echo w1 > w.bin && cairn add w.bin && cairn commit clf -m v1 --data ds
    run cairn gate clf --policy policy.yaml
    assert_success
    gen_csv bad.csv 300 20
    rm good.csv
    cairn add bad.csv && cairn commit ds --kind dataset -m shifted
    run cairn data validate ds --schema schema.yaml
    assert_failure 3
    echo w2 > w.bin && cairn add w.bin && cairn commit clf -m v2 --data ds
    run cairn gate clf --policy policy.yaml
    assert_failure 3
    assert_output --partial "failed its latest validation"
    # A model with no dataset in its lineage cannot pass `data: validated` either.
    echo w3 > w.bin && cairn add w.bin && cairn commit other -m none
    run cairn gate other --policy policy.yaml
    assert_failure 3
    assert_output --partial "no dataset"
}

@test "a bad schema is a usage error naming file, line and column" {
    printf 'columns:\n  x: {type: decimal}\n' > broken.yaml
    gen_csv d.csv 120 0
    cairn add d.csv && cairn commit ds --kind dataset -m d
    run --separate-stderr cairn data validate ds --schema broken.yaml
    assert_failure 2
    [[ $stderr == *"broken.yaml:2:"* ]]
}

@test "drift: two samples of one distribution pass, a shifted one is flagged" {
    printf 'ignore: [id]\n' > drift.yaml
    gen_csv a.csv 2000 0
    cairn add a.csv && cairn commit ds --kind dataset -m a
    # Same distribution, other rows: the second half of a bigger sample.
    gen_csv big.csv 4000 0
    head -n 1 big.csv > b.csv && tail -n 2000 big.csv >> b.csv
    rm a.csv && cairn add b.csv && cairn commit ds --kind dataset -m b
    run cairn data drift ds@v1 ds@v2 --thresholds drift.yaml
    assert_success
    gen_csv c.csv 2000 3
    rm b.csv && cairn add c.csv && cairn commit ds --kind dataset -m shifted
    run cairn data drift ds@v1 ds@v3 --thresholds drift.yaml --json
    assert_failure 3
    [ "$(jq .drifted <<<"$output")" = true ]
    [ "$(jq -r '.columns[] | select(.name == "x") | .drifted' <<<"$output")" = true ]
}

@test "data: options anywhere, '--' ends them, missing values are usage errors" {
    gen_csv train.csv 300 0
    mkdir sub && cp train.csv sub/
    run --separate-stderr cairn data validate --json --schema schema.yaml ./sub
    assert_success
    jq -e '.passed and .rows == 300' <<<"$output"
    run --separate-stderr cairn data drift --json ./sub --psi 0.5 ./train.csv
    assert_success
    jq -e '.drifted == false and .rows_ref == 300 and .rows_cur == 300' <<<"$output"
    # After '--' "--json" is a dataset argument (here: an extra one).
    run -2 --separate-stderr cairn data validate --schema schema.yaml ./sub -- --json
    assert_equal "$output" ""
    assert_equal "$stderr" "cairn: unexpected argument '--json' (see 'cairn data --help')"
    run -2 --separate-stderr cairn data validate ./sub --schema
    assert_equal "$stderr" "cairn: --schema needs a value (FILE) (see 'cairn data --help')"
    run -2 --separate-stderr cairn data validate ./sub
    assert_equal "$stderr" "cairn: missing --schema FILE (see 'cairn data --help')"
    run -2 --separate-stderr cairn data drift ./sub ./train.csv --psi abc
    assert_equal "$stderr" "cairn: --psi wants a number, not 'abc' (see 'cairn data --help')"
    run -2 --separate-stderr cairn data drift ./sub
    assert_equal "$stderr" "cairn: drift compares two datasets: give REF1 REF2 (see 'cairn data --help')"
    run -2 --separate-stderr cairn data frobnicate
    assert_equal "$stderr" "cairn: unknown subcommand 'frobnicate' (expected validate or drift) (see 'cairn data --help')"
    run cairn data --help
    assert_line "usage: cairn data validate REF --schema FILE [--json]"
    assert_line --regexp '^       cairn data drift REF1 \[REF2\] '
    assert_output --partial '[--live MODEL]'
    assert_line --regexp '^  --cramers-v X +'
}
