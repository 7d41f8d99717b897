#!/usr/bin/env bash
# A second lane beside run.sh (the 2-core CPU runs both at once, 1 torch thread each): table2 seeds 1 and 2 of
# MIAN and the cheaper baselines first (LR, Wide&Deep, DCN, DeepFM, DIN: 5-15 ms a step at batch 128 against
# MIAN's 56, xDeepFM's 73 and DIEN's 91 on this CPU, results/efficiency/cpu-amd-epyc-1t.md), so that C1 and C6 get
# three seeds of most arms before the expensive ones. Its own store, mlflow-b.db, beside this script.
# Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT): CHECKOUT=<that checkout> bash run_b.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
common=(dataset=movielens_seq dataset.raw_dir=../shared/data/ml-1m-part trainer.progress=false
        "tracking.uri=sqlite:///$here/mlflow-b.db")
sweep() {  # sweep <log name> <overrides...>
    python -m benchmark "${common[@]}" "${@:2}" >> "$here/$1.log" 2>&1
    echo "$1 $* done $(date -u) rc=$?" >> "$here/status.txt"
}
for seed in 1 2; do
    sweep "b-seed$seed" experiment=table2 seed=$seed model=mian,deepfm,dcn,wide_deep,lr,din
done
for seed in 1 2; do
    sweep "b-seed$seed" experiment=table2 seed=$seed model=xdeepfm,dien
done
