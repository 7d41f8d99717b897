#!/usr/bin/env bash
# The scale benchmark on the 2-core development machine: Books-size generated raw files end to end (build with
# an empty cache, load, resident size, timed training steps of MIAN and DIN, full evaluations), then the
# Electronics-size build. Logs beside the results. The Books line was run twice: first with evaluation batch
# 8192 (the *-first-run-eval8192 files), then with the benchmark's default of 1024.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.." && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
python -m benchmark.data.bench_preprocess --dataset books --train-eval --out results/scale > "$here/books.log" 2>&1
echo "books rc=$?" >> "$here/status.txt"
python -m benchmark.data.bench_preprocess --dataset electronics --out results/scale > "$here/electronics.log" 2>&1
echo "electronics rc=$?" >> "$here/status.txt"
