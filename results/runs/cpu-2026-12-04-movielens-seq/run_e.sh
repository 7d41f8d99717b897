#!/usr/bin/env bash
# Lane E (2026-12-04, evening session), MIAN under protocol=shared_decoupled (the paper's L2 coefficient as
# decoupled weight decay; the reading under which MIAN learns this data, run_c.sh): seeds 1 and 2, so that the
# robustness column's C1 (MIAN vs the best baseline on validation AUC) has three seeds a side; then, while time
# lasts, the C2-C4 ablations under the same protocol, seed 0 (w/o IBIM first: C2 asks whether it costs the most).
# Registered before the runs: C1 (decoupled column) compares MIAN with the baseline of best mean validation AUC;
# C2-C4 as in run.sh. One job at a time, 1 torch thread, store mlflow-e.db.
# Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT): CHECKOUT=<that checkout> bash run_e.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
common=(dataset=movielens_seq dataset.raw_dir=../shared/data/ml-1m-part trainer.progress=false
        protocol=shared_decoupled "tracking.uri=sqlite:///$here/mlflow-e.db")
sweep() {  # sweep <log name> <overrides...>
    python -m benchmark "${common[@]}" "${@:2}" >> "$here/$1.log" 2>&1
    echo "$1 $* done $(date -u) rc=$?" >> "$here/status.txt"
}
sweep e-decoupled experiment=table2 model=mian seed=1,2
sweep e-decoupled experiment=table3 seed=0 ablation=no_ibim,no_iuim_icim,no_gim
