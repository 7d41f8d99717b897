#!/usr/bin/env bash
# After the synthetic tables: the effects experiment, 3 seeds, on this CPU.
# Paths are relative to this folder; as run, it went from the checkout's root and wrote its store (synthetic.db,
# now in runs.tar.gz), log and status line to the folder cpu-runs beside the checkout.
while pgrep -f run_synth.sh > /dev/null; do sleep 10; done
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
python -m benchmark experiment=effects hydra/launcher=local_parallel hydra.launcher.n_jobs=2 \
    trainer.progress=false "tracking.uri=sqlite:///$here/synthetic.db" > "$here/synth_effects.log" 2>&1
echo "effects done $(date)" >> "$here/status.txt"
