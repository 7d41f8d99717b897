#!/usr/bin/env bash
# Next-item MovieLens-1M (dataset=movielens_seq: users 1-2999, DIN's Amazon protocol, 1 negative per positive,
# split=fraction) under the `shared` protocol, MIAN read literally: the primary cells of the verdict on data of the
# paper's Amazon kind. Registered before the runs, what the tables test:
#   C1 MIAN vs the best baseline on validation AUC (table2: the eight models);
#   C6 DIN and DIEN vs every non-sequential model (table2);
#   C2-C4 removing IBIM costs the most; removing IUIM & ICIM, and GIM, costs AUC (table3: the five ablations);
#   C5 Pre-LN > Post-LN > no Transformer (table4: post_ln, none; pre_ln is the table2 MIAN run of the same seed);
#   and, in the robustness table, MIAN with readout=product (experiment=readings).
# One chunk per seed, seed-major (every arm of seed 0 before seed 1), one job at a time with 1 torch thread on the
# 2-core CPU, all into one store beside this script. Run from a checkout of the commit it names
# (BENCHMARK_GIT_COMMIT): CHECKOUT=<that checkout> bash run.sh [seeds...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
common=(dataset=movielens_seq dataset.raw_dir=../shared/data/ml-1m-part trainer.progress=false
        "tracking.uri=sqlite:///$here/mlflow.db")
sweep() {  # sweep <log name> <overrides...>
    python -m benchmark "${common[@]}" "${@:2}" >> "$here/$1.log" 2>&1
    echo "$1 $* done $(date -u) rc=$?" >> "$here/status.txt"
}
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
for seed in "${seeds[@]}"; do
    sweep "seed$seed" experiment=table2 seed=$seed model=mian,xdeepfm,deepfm,dcn,wide_deep,lr,din,dien
    sweep "seed$seed" experiment=table3 seed=$seed ablation=no_ibim,no_iuim_icim,no_gim,no_iuim,no_icim
    sweep "seed$seed" experiment=table4 seed=$seed model=mian model.encoder=post_ln,none
    sweep "seed$seed" experiment=readings seed=$seed model=mian model.encoder=pre_ln model.ibim_score=additive \
        model.readout=product
done
