#!/usr/bin/env bash
# DIEN's MovieLens row of Table 2 (missing from the H200 runs), 3 seeds on the 2-core CPU: 3 jobs at once,
# 1 torch thread each, at low priority beside other work (its epoch times are not for the efficiency table).
cd /work/main && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
nice -n 10 python -m benchmark experiment=table2 dataset=movielens dataset.raw_dir=/work/main/.mldata \
    seed=0,1,2 model=dien hydra/launcher=local_parallel hydra.launcher.n_jobs=3 trainer.progress=false \
    tracking.uri=sqlite:////work/cpu-runs/movielens-dien.db > /work/cpu-runs/movielens_dien.log 2>&1
echo "movielens dien done $(date) rc=$?" >> /work/cpu-runs/synth_status.txt
