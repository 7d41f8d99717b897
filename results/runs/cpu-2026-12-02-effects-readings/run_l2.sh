#!/usr/bin/env bash
# The same effects sweep as run.sh under a lighter L2 (trainer.l2=1e-5, protocol tag `shared l2=1e-05`): under
# the shared protocol's 1e-3 only DeepFM learns the planted sequence effect, so the question "under which
# reading does IBIM matter?" needs a protocol under which the controls learn. Starts when run.sh has finished.
set -u
cd "$(dirname "$0")/../../.." && source .venv/bin/activate
here=results/runs/cpu-2026-12-02-effects-readings
while pgrep -f "$here/run.sh" > /dev/null; do sleep 30; done
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
mian=mian_additive,mian_no_ibim,mian_no_iuim,mian_no_icim,mian_per_position,mian_bahdanau,mian_bilinear,mian_din
common=(experiment=effects trainer.progress=false "tracking.uri=sqlite:///$PWD/$here/mlflow.db" seed=0,1,2
        trainer.l2=1e-5)
python -m benchmark "${common[@]}" effects=sequence arm=$mian,din,dien,deepfm > $here/sweep_l2_sequence.log 2>&1
echo "l2=1e-5 sequence done $(date -u) rc=$?" >> $here/status.txt
for effect in user context; do
    python -m benchmark "${common[@]}" effects=$effect arm=$mian,deepfm,xdeepfm > $here/sweep_l2_$effect.log 2>&1
    echo "l2=1e-5 $effect done $(date -u) rc=$?" >> $here/status.txt
done
