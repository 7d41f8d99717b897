#!/usr/bin/env bash
# Paper Section 4.5 on MovieLens-1M (users 1-2999): every model, 3 epochs, 2 seeds, one job at a time,
# 1 torch thread, the 2-core CPU otherwise idle (the efficiency experiment's rule: run it alone).
cd /work/main && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
python -m benchmark experiment=efficiency dataset=movielens dataset.raw_dir=/work/shared/data/ml-1m-part \
    seed=0,1 trainer.progress=false tracking.uri=sqlite:////work/cpu-runs/efficiency-movielens.db \
    > /work/cpu-runs/efficiency_movielens.log 2>&1
echo "efficiency movielens done $(date) rc=$?" >> /work/cpu-runs/status.txt
