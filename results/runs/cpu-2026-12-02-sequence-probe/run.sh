#!/usr/bin/env bash
# Probe: MIAN under the `din` reading still fails the planted sequence effect at L2 1e-5 while DIN learns it.
# Which of MIAN's other parts is in the way? The Transformer (encoder=none) and GIM's weighting (ablation=no_gim),
# alone and together, 2 seeds, on the sequence-only synthetic data. Run from the repository root.
set -u
cd "$(dirname "$0")/../../.." && source .venv/bin/activate
here=results/runs/cpu-2026-12-02-sequence-probe
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
python -m benchmark -m experiment=effects effects=sequence trainer.l2=1e-5 trainer.progress=false \
    "tracking.uri=sqlite:///$PWD/$here/mlflow.db" tracking.experiment=mian-sequence-probe \
    seed=0,1 arm=mian_din model.encoder=pre_ln,none ablation=full,no_gim > $here/probe.log 2>&1
echo "probe done $(date -u) rc=$?" >> $here/status.txt
# Second probe: is it the softmax? DIN with its attention weights normalised (as MIAN's and DIEN's are).
python -m benchmark -m experiment=effects effects=sequence trainer.l2=1e-5 trainer.progress=false \
    "tracking.uri=sqlite:///$PWD/$here/mlflow.db" tracking.experiment=mian-sequence-probe \
    seed=0,1 arm=din model.att_weight_normalization=true,false > $here/probe_din.log 2>&1
echo "probe din done $(date -u) rc=$?" >> $here/status.txt
# Third probe: MIAN with e_b as the sum of the behaviours (model.e_b_pool=sum), which keeps counts.
python -m benchmark -m experiment=effects effects=sequence trainer.l2=1e-5 trainer.progress=false \
    "tracking.uri=sqlite:///$PWD/$here/mlflow.db" tracking.experiment=mian-sequence-probe \
    seed=0,1 arm=mian_additive,mian_din model.e_b_pool=sum > $here/probe_sum.log 2>&1
echo "probe sum done $(date -u) rc=$?" >> $here/status.txt
