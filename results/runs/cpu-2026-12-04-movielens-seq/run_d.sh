#!/usr/bin/env bash
# The second lane's continuation, replanned once MIAN learned under shared_decoupled (validation AUC 0.893 after
# one epoch, 0.925 after two, where under `shared` it stayed at 0.500): first the cheap baselines under the same
# decoupled protocol (seed 0), so that MIAN's robustness column has baselines beside it, then table2 seeds 1 and 2
# of the cheap baselines under `shared` (run_c.sh's second step). Waits for run_c.sh's MIAN job to end; its own
# store mlflow-d.db. Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT): CHECKOUT=<checkout> bash
# run_d.sh [pid to wait for]
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
[ -n "${1:-}" ] && while kill -0 "$1" 2>/dev/null; do sleep 15; done
common=(dataset=movielens_seq dataset.raw_dir=../shared/data/ml-1m-part trainer.progress=false
        "tracking.uri=sqlite:///$here/mlflow-d.db")
sweep() {  # sweep <log name> <overrides...>
    python -m benchmark "${common[@]}" "${@:2}" >> "$here/$1.log" 2>&1
    echo "$1 $* done $(date -u) rc=$?" >> "$here/status.txt"
}
sweep d-decoupled experiment=table2 seed=0 model=deepfm,din,lr protocol=shared_decoupled
for seed in 1 2; do
    sweep "d-seed$seed" experiment=table2 seed=$seed model=deepfm,dcn,wide_deep,lr,din
done
