#!/usr/bin/env bash
# The synthetic Tables 2-4 at the current default, 3 seeds, on this CPU.
# Paths are relative to this folder; as run, it went from the checkout's root and wrote its store (synthetic.db,
# now in runs.tar.gz), logs and status lines to the folder cpu-runs beside the checkout.
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for t in table2 table3 table4; do
  python -m benchmark experiment=$t seed=0,1,2 hydra/launcher=local_parallel hydra.launcher.n_jobs=2 \
      trainer.progress=false "tracking.uri=sqlite:///$here/synthetic.db" > "$here/synth_$t.log" 2>&1
  echo "$t done $(date)" >> "$here/status.txt"
done
