#!/usr/bin/env bash
# The rest of run.sh's chunks but shared_long, on the then idle 2-core CPU: two lanes of one job each with 1 torch
# thread (`shared` at 5 seeds; then seeds 3-4 of `library` and of `shared_light`), from the same commit as run.sh.
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
chunk shared shared 0,1,2,3,4 &
(chunk library_s34 library 3,4; chunk shared_light_s34 shared_light 3,4) &
wait
