#!/bin/sh
# Deterministic train/test split of digits.csv: every 5th image (data rows
# 5, 10, 15, ... counting from 1) goes to test.csv, the rest to train.csv,
# both with the header. No randomness, so every machine gets the same split
# (1438 train and 359 test rows) and a dataset version's digest is stable.
#
# Usage: split.sh [DIR]   reads DIR/digits.csv, writes DIR/train.csv and DIR/test.csv
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/data}
in=$dir/digits.csv
[ -s "$in" ] || { echo "split: $in missing; run fetch-data.sh first" >&2; exit 1; }

awk -v train="$dir/train.csv.tmp" -v test="$dir/test.csv.tmp" '
NR == 1 { print > train; print > test; next }
{ if ((NR - 1) % 5 == 0) print > test; else print > train }
' "$in"
mv "$dir/train.csv.tmp" "$dir/train.csv"
mv "$dir/test.csv.tmp" "$dir/test.csv"
echo "split: $(($(wc -l < "$dir/train.csv") - 1)) train, $(($(wc -l < "$dir/test.csv") - 1)) test rows in $dir"
