#!/usr/bin/env bash
# Paper Section 4.5 on the synthetic data: every model, 3 epochs, 3 seeds, one job at a time, 1 torch thread,
# the 2-core CPU otherwise idle.
# Paths are relative to this folder; as run, it went from the checkout's root and wrote its store
# (efficiency.db, now in runs.tar.gz), log and status line to the folder cpu-runs beside the checkout.
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
python -m benchmark experiment=efficiency dataset=synthetic seed=0,1,2 trainer.progress=false \
    "tracking.uri=sqlite:///$here/efficiency.db" > "$here/efficiency.log" 2>&1
echo "efficiency done $(date) rc=$?" >> "$here/status.txt"
