#!/bin/sh
# Synthetic stand-in for the digits data, for tests and benchmarks on a
# machine without the real set (fetch-data.sh): ROWS rows in its CSV layout
# (`p0,...,p63,label`, pixels 0..16), class c = row mod 10, and each class
# lights its own band of six pixels, so a small model learns it quickly.
# The same SEED gives the same file (awk's srand/rand).
#
# Usage: gen-synthetic.sh FILE ROWS SEED
set -eu
[ $# -eq 3 ] || { echo "usage: gen-synthetic.sh FILE ROWS SEED" >&2; exit 2; }
awk -v rows="$2" -v seed="$3" 'BEGIN {
    srand(seed)
    for (j = 0; j < 64; j++) printf "p%d,", j
    print "label"
    for (r = 0; r < rows; r++) {
        c = r % 10
        for (j = 0; j < 64; j++) {
            v = int((int(j / 6) == c ? 9 : 1) + rand() * 7)
            printf "%d,", (v > 16 ? 16 : v)
        }
        print c
    }
}' >"$1"
