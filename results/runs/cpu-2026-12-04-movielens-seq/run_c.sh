#!/usr/bin/env bash
# The second lane, replanned after the first MIAN epoch (seed 0, run.sh): under `shared` (L2 1e-3 coupled inside
# Adam on every dense parameter) MIAN's LayerNorm gains and GIM scores reach 0 within the first epoch on this data
# (6,054 steps an epoch), its validation AUC is 0.5000 and its training loss ln 2: it does not learn. More `shared`
# MIAN seeds would only repeat that (run_b.sh's seed-1 MIAN was stopped in its first epoch, marked KILLED).
# This lane runs instead, one job at a time with 1 torch thread, into its own store mlflow-c.db:
#   1. MIAN, seed 0, protocol shared_decoupled (the same L2 coefficient as decoupled weight decay, AdamW): can MIAN
#      learn this data at all under the other reading of the paper's L2? (a robustness column, not primary);
#   2. table2 seeds 1 and 2 of the baselines that cost 5-15 ms a step (DeepFM, DCN, Wide&Deep, LR, DIN) under
#      `shared`, for three seeds of the C1/C6 baselines.
# Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT): CHECKOUT=<that checkout> bash run_c.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
common=(dataset=movielens_seq dataset.raw_dir=../shared/data/ml-1m-part trainer.progress=false
        "tracking.uri=sqlite:///$here/mlflow-c.db")
sweep() {  # sweep <log name> <overrides...>
    python -m benchmark "${common[@]}" "${@:2}" >> "$here/$1.log" 2>&1
    echo "$1 $* done $(date -u) rc=$?" >> "$here/status.txt"
}
sweep c-decoupled experiment=table2 seed=0 model=mian protocol=shared_decoupled
for seed in 1 2; do
    sweep "c-seed$seed" experiment=table2 seed=$seed model=deepfm,dcn,wide_deep,lr,din
done
