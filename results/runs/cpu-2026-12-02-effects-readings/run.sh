#!/usr/bin/env bash
# experiment=effects on the synthetic data (data seed 0, 1,000 users), the 2-core CPU, one job at a time with
# 1 torch thread (the other core runs the MovieLens readings): per planted effect, MIAN under every reading and
# ablation, and the positive controls built for that effect. Run from the repository root.
set -u
cd "$(dirname "$0")/../../.." && source .venv/bin/activate
here=results/runs/cpu-2026-12-02-effects-readings
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
mian=mian_additive,mian_no_ibim,mian_no_iuim,mian_no_icim,mian_per_position,mian_bahdanau,mian_bilinear,mian_din
common=(experiment=effects trainer.progress=false "tracking.uri=sqlite:///$PWD/$here/mlflow.db" seed=0,1,2)
python -m benchmark "${common[@]}" effects=sequence arm=$mian,din,dien,deepfm > $here/sweep_sequence.log 2>&1
echo "sequence done $(date -u) rc=$?" >> $here/status.txt
for effect in user context; do
    python -m benchmark "${common[@]}" effects=$effect arm=$mian,deepfm,xdeepfm > $here/sweep_$effect.log 2>&1
    echo "$effect done $(date -u) rc=$?" >> $here/status.txt
done
