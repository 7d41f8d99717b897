#!/usr/bin/env bash
# MIAN on MovieLens-1M (users 1-2999) under the candidate-aware readings of Eq. 8, the 2-core CPU, one job at a
# time with 1 torch thread (the other core runs the synthetic experiments). Most important cells first:
# full MIAN (pre_ln) under bahdanau and din for seeds 0-2, then encoder=none. Run from the repository root.
set -u
cd "$(dirname "$0")/../../.." && source .venv/bin/activate
here=results/runs/cpu-2026-12-02-readings-movielens
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
common=(experiment=readings dataset=movielens dataset.raw_dir=../shared/data/ml-1m-part trainer.progress=false
        "tracking.uri=sqlite:///$PWD/$here/mlflow.db" model.ibim_score=bahdanau,din seed=0,1,2)
python -m benchmark "${common[@]}" model.encoder=pre_ln > $here/sweep_pre_ln.log 2>&1
echo "pre_ln done $(date -u) rc=$?" >> $here/status.txt
python -m benchmark "${common[@]}" model.encoder=none > $here/sweep_none.log 2>&1
echo "none done $(date -u) rc=$?" >> $here/status.txt
