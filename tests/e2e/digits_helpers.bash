# Shared by the tests that train the digits example (t2500, t4100): the
# data and a trained model, once per file. Load after helpers.

TRAINER="$CAIRN_BUILD_DIR/examples/digits/cairn-digits-train"

# digits_fixture DIR: DIR/data/train.csv and DIR/test/test.csv (the real
# digits when examples/digits/data has them, else the synthetic stand-in of
# examples/digits/gen-synthetic.sh) and DIR/model trained on them.
digits_fixture() {
    local d=$1 ex="$REPO_ROOT/examples/digits"
    mkdir -p "$d/data" "$d/test"
    if [[ -s $ex/data/test.csv && -s $ex/data/train.csv ]]; then
        cp "$ex/data/train.csv" "$d/data/train.csv"
        cp "$ex/data/test.csv" "$d/test/test.csv"
    else
        "$ex/gen-synthetic.sh" "$d/data/train.csv" 600 1
        "$ex/gen-synthetic.sh" "$d/test/test.csv" 200 2
    fi
    "$TRAINER" --train "$d/data/train.csv" --test "$d/test/test.csv" --out "$d/model" \
        >"$d/train.log" 2>&1 || { cat "$d/train.log" >&2; return 1; }
}
