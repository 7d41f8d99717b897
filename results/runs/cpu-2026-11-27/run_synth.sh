#!/usr/bin/env bash
# The synthetic Tables 2-4 at the current default, 3 seeds, on this CPU.
cd /work/main && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for t in table2 table3 table4; do
  python -m benchmark experiment=$t seed=0,1,2 hydra/launcher=local_parallel hydra.launcher.n_jobs=2 \
      trainer.progress=false tracking.uri=sqlite:////work/cpu-runs/synthetic.db > /work/cpu-runs/synth_$t.log 2>&1
  echo "$t done $(date)" >> /work/cpu-runs/synth_status.txt
done
