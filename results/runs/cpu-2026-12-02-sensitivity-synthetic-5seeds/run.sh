#!/usr/bin/env bash
# experiment=sensitivity on the synthetic data (all three effects planted, 1,000 users), completing every cell at
# 5 seeds: the 2-core CPU, one job at a time with 1 torch thread, one chunk (store) per protocol, in the folder of
# the chunk's name. Seeds 0-2 of `library` and `shared_light` are in ../cpu-2026-12-02-sensitivity-synthetic;
# here their seeds 3 and 4. Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT); the stores are
# written beside this script.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
chunk() {  # chunk <store folder> <protocol> <seeds>
    mkdir -p "$here/$1"
    python -m benchmark experiment=sensitivity trainer.progress=false "tracking.uri=sqlite:///$here/$1/mlflow.db" \
        seed=$3 protocol=$2 > "$here/$1/sweep.log" 2>&1
    local rc=$?
    echo "$1 done $(date -u) rc=$rc" >> "$here/status.txt"
}
chunk shared_kernels shared_kernels 0,1,2,3,4
chunk shared_decoupled shared_decoupled 0,1,2,3,4
chunk shared_long shared_long 0,1,2,3,4
chunk shared shared 0,1,2,3,4
chunk library_s34 library 3,4
chunk shared_light_s34 shared_light 3,4
