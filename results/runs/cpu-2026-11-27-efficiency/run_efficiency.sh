#!/usr/bin/env bash
# Paper Section 4.5 on the synthetic data: every model, 3 epochs, 3 seeds, one job at a time, 1 torch thread,
# the 2-core CPU otherwise idle.
cd /work/main && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
python -m benchmark experiment=efficiency dataset=synthetic seed=0,1,2 trainer.progress=false \
    tracking.uri=sqlite:////work/cpu-runs/efficiency.db > /work/cpu-runs/efficiency.log 2>&1
echo "efficiency done $(date) rc=$?" >> /work/cpu-runs/synth_status.txt
