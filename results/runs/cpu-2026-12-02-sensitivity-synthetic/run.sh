#!/usr/bin/env bash
# experiment=sensitivity on the synthetic data (all three effects planted, 1,000 users), the 2-core CPU, one job
# at a time with 1 torch thread, in chunks of one protocol each (each chunk a finished store): the library's
# settings first, then the shared protocol at L2 1e-5; 3 seeds (the experiment's default is 5). The shared
# protocol's own cells come from the committed table2/table3 runs. Starts when the effects passes have finished.
set -u
cd "$(dirname "$0")/../../.." && source .venv/bin/activate
here=results/runs/cpu-2026-12-02-sensitivity-synthetic
while pgrep -f "cpu-2026-12-02-effects-readings/run" > /dev/null; do sleep 30; done
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
for protocol in library shared_light; do
    python -m benchmark experiment=sensitivity trainer.progress=false "tracking.uri=sqlite:///$PWD/$here/mlflow.db" \
        seed=0,1,2 protocol=$protocol > $here/sweep_$protocol.log 2>&1
    echo "$protocol done $(date -u) rc=$?" >> $here/status.txt
done
