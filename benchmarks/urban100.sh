#!/usr/bin/env bash
# Urban100 at x2, x3 and x4 for bicubic and the shipped networks: the records that the benchmarks
# page (book/benchmarks.md) shows when it does not evaluate Urban100 itself (quick mode).
# Downloads Urban100 (checksummed) on first use, or reads it from $SRLIB_DATA. Float32 on the CPU:
# about an hour on two cores, most of it VDSR's.
#   bash benchmarks/urban100.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results
python -m srlib evaluate --model bicubic --data Urban100 --scale 2 3 4 --json $out/urban100-bicubic.json
for s in 2 3 4; do
  python -m srlib evaluate --model srcnn-x$s --data Urban100 --scale $s --json $out/urban100-srcnn-x$s.json
done
python -m srlib evaluate --model vdsr --data Urban100 --scale 2 3 4 --json $out/urban100-vdsr.json
