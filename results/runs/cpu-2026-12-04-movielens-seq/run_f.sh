#!/usr/bin/env bash
# Lane F (2026-12-04, evening session), the baselines that cost 5-15 ms a step on this CPU, beside lane E:
#   1. DIN and DeepFM under protocol=shared_decoupled, seeds 1 and 2 (C1's comparators in the decoupled column);
#   2. the primary cells' baselines under `shared`, seeds 0-2: DIN, DeepFM, DCN, Wide&Deep, LR (C6 compares DIN
#      and DIEN with every non-sequential model; DeepFM seed 1 is already in mlflow-d.db);
#   3. DCN, Wide&Deep and LR under shared_decoupled, seeds 0-2 (the rest of the decoupled column's baselines);
#   4. while time lasts, xDeepFM and DIEN under `shared`, seed 0 (the costly ones).
# Registered before the runs: C6 (primary, `shared`) DIN and DIEN vs every non-sequential model; C1 as in run_e.sh.
# One job at a time, 1 torch thread, store mlflow-f.db.
# Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT): CHECKOUT=<that checkout> bash run_f.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
common=(dataset=movielens_seq dataset.raw_dir=../shared/data/ml-1m-part trainer.progress=false
        experiment=table2 "tracking.uri=sqlite:///$here/mlflow-f.db")
sweep() {  # sweep <log name> <overrides...>
    python -m benchmark "${common[@]}" "${@:2}" >> "$here/$1.log" 2>&1
    echo "$1 $* done $(date -u) rc=$?" >> "$here/status.txt"
}
sweep f-decoupled protocol=shared_decoupled model=din,deepfm seed=1,2
sweep f-shared model=din,deepfm,dcn,wide_deep,lr seed=0
sweep f-shared model=din,dcn,wide_deep,lr seed=1
sweep f-shared model=din,deepfm,dcn,wide_deep,lr seed=2
sweep f-decoupled protocol=shared_decoupled model=dcn,wide_deep,lr seed=0,1,2
sweep f-shared model=xdeepfm,dien seed=0
