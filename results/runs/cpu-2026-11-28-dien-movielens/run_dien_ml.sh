#!/usr/bin/env bash
# DIEN's MovieLens row of Table 2 (missing from the H200 runs), 3 seeds on the 2-core CPU: 3 jobs at once,
# 1 torch thread each, at low priority beside other work (its epoch times are not for the efficiency table).
# Paths are relative to this folder; as run, it went from the checkout's root, read the MovieLens files from the
# checkout's .mldata (given by absolute path) and wrote its store (movielens-dien.db, now in runs.tar.gz), log
# and status line to the folder cpu-runs beside the checkout.
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
nice -n 10 python -m benchmark experiment=table2 dataset=movielens dataset.raw_dir=.mldata \
    seed=0,1,2 model=dien hydra/launcher=local_parallel hydra.launcher.n_jobs=3 trainer.progress=false \
    "tracking.uri=sqlite:///$here/movielens-dien.db" > "$here/movielens_dien.log" 2>&1
echo "movielens dien done $(date) rc=$?" >> "$here/status.txt"
