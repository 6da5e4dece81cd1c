#!/bin/sh
# Fetch the UCI handwritten digits (1,797 8x8 images, 10 classes) from the
# copy Debian ships inside python3-sklearn, without installing the package or
# needing Python: `apt-get download` the .deb, unpack it with `dpkg -x` in a
# scratch directory, and keep only sklearn/datasets/data/digits.csv.gz.
#
# Writes DIR/digits.csv (default DIR: examples/digits/data, which git
# ignores) with a header `p0,...,p63,label`: 64 pixel intensities 0..16 then
# the class 0..9. Idempotent: does nothing if digits.csv is already there.
#
# Usage: fetch-data.sh [DIR]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/data}
out=$dir/digits.csv

if [ -s "$out" ]; then
    echo "fetch-data: $out already present"
    exit 0
fi
mkdir -p "$dir"
scratch=$(mktemp -d "$dir/fetch.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM

# As root, apt drops to the _apt user for downloads, which cannot write to our
# private scratch directory; download as root then instead of warning.
sandbox=
if [ "$(id -u)" = 0 ]; then
    sandbox="-o APT::Sandbox::User=root"
fi
# shellcheck disable=SC2086
if ! (cd "$scratch" && apt-get -q $sandbox download python3-sklearn >/dev/null); then
    echo "fetch-data: apt-get download python3-sklearn failed (run 'apt-get update' first?)" >&2
    exit 1
fi
deb=$(ls "$scratch"/python3-sklearn_*.deb)
dpkg -x "$deb" "$scratch/root"
gz=$(find "$scratch/root" -path '*/sklearn/datasets/data/digits.csv.gz' | head -n 1)
if [ -z "$gz" ]; then
    echo "fetch-data: digits.csv.gz not found in $(basename "$deb")" >&2
    exit 1
fi

# sklearn's file has no header and writes every value as a float ("0.0"):
# add the header and print integers, checking the shape on the way.
gzip -dc "$gz" | awk -F, '
BEGIN { OFS = ","; h = ""; for (i = 0; i < 64; i++) h = h "p" i ","; print h "label" }
NF != 65 { printf "fetch-data: line %d has %d fields, want 65\n", NR, NF > "/dev/stderr"; exit 1 }
{ line = ""; for (i = 1; i <= 65; i++) line = line (i > 1 ? "," : "") int($i + 0); print line; n++ }
END { if (n != 1797) { printf "fetch-data: %d rows, want 1797\n", n > "/dev/stderr"; exit 1 } }
' > "$scratch/digits.csv"
mv "$scratch/digits.csv" "$out"
echo "fetch-data: wrote $out (1797 rows)"
