#!/usr/bin/env bash
# After the synthetic tables: the effects experiment, 3 seeds, on this CPU.
while pgrep -f run_synth.sh > /dev/null; do sleep 10; done
cd /work/main && source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
python -m benchmark experiment=effects hydra/launcher=local_parallel hydra.launcher.n_jobs=2 \
    trainer.progress=false tracking.uri=sqlite:////work/cpu-runs/synthetic.db > /work/cpu-runs/synth_effects.log 2>&1
echo "effects done $(date)" >> /work/cpu-runs/synth_status.txt
