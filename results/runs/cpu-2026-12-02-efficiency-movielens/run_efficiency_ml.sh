#!/usr/bin/env bash
# Paper Section 4.5 on MovieLens-1M (users 1-2999): every model, 3 epochs, 2 seeds, one job at a time,
# 1 torch thread, the 2-core CPU otherwise idle (the efficiency experiment's rule: run it alone).
# Paths are relative to this folder; as run, it went from the checkout's root, read the MovieLens files from
# ../shared/data/ml-1m-part (given by absolute path) and wrote its store (efficiency-movielens.db, now in
# runs.tar.gz), log and status line to the folder cpu-runs beside the checkout.
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
python -m benchmark experiment=efficiency dataset=movielens dataset.raw_dir=../shared/data/ml-1m-part \
    seed=0,1 trainer.progress=false "tracking.uri=sqlite:///$here/efficiency-movielens.db" \
    > "$here/efficiency_movielens.log" 2>&1
echo "efficiency movielens done $(date) rc=$?" >> "$here/status.txt"
