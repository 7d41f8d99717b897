#!/usr/bin/env bash
# The `shared_long` cell of experiment=sensitivity at 5 seeds (its first attempt was stopped unfinished at a
# session's end and thrown away): the 2-core CPU, one job at a time with 1 torch thread, its store in
# shared_long/. Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT), like run.sh.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
mkdir -p "$here/shared_long"
python -m benchmark experiment=sensitivity trainer.progress=false "tracking.uri=sqlite:///$here/shared_long/mlflow.db" \
    seed=0,1,2,3,4 protocol=shared_long > "$here/shared_long/sweep.log" 2>&1
rc=$?
echo "shared_long done $(date -u) rc=$rc" >> "$here/status.txt"
