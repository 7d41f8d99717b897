#!/usr/bin/env bash
# experiment=effects on the calibrated data (benchmark/data/calibrated.py, tier S), on the 2-core CPU: one job at a
# time with 1 torch thread (the other core runs other sweeps). What the table tests is registered in
# conf/experiment/effects.yaml. Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT); the store is
# mlflow.db beside this script (packed as runs.tar.gz with its mlartifacts/), each stage's log sweep_<stage>.log.
#   gate   every mechanism's gate: its positive control and LR on the planted data, the control on the knock-out
#          data; data seed 0, training seed 0 (21 jobs, 9 minutes)
#   max    the sequence `max` form, data seed 0, training seed 0: DeepFM, DIN, MIAN din and MIAN product readout
#          (4 jobs, 20 minutes)
#   gate_seeds  the gate again on data seeds 1 and 2, training seed 0 (42 jobs, about 20 minutes)
#   pack   the store as the report reads it: runs.tar.gz holding mlflow.db (a consistent copy, also of a store
#          still being written) and mlartifacts/
#   rest   the whole grid (3 data seeds x 3 training seeds x 7 mechanisms x 15 arms, and every knock-out control):
#          about 70-115 hours of one core at the measured times (a MIAN arm that does not learn stops after 3
#          epochs, one that does runs up to 10), the run a GPU or many cores is for; the jobs
#          already in the store are run again (the report keeps the latest run of a cell and seed)
#   ./run.sh gate; ./run.sh max; ./run.sh gate_seeds; ./run.sh pack      # what this folder's store holds
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
common=(experiment=effects trainer.progress=false trainer.eval_batch_size=1024 "tracking.uri=sqlite:///$here/mlflow.db")
declare -A control=([sequence_share]=fm [sequence_max]=max_sim [sequence_softmax]=product_attn [user_bilinear]=fm
                    [user_threeway]=tensor_fact [context_bilinear]=fm [context_threeway]=tensor_fact)
mechanisms=(sequence_share sequence_max sequence_softmax user_bilinear user_threeway context_bilinear context_threeway)
stage=${1:?name a stage: gate, max, gate_seeds, rest or pack}
log="$here/sweep_$stage.log"
gate() {  # the gate of every mechanism on data seed $1, training seed 0
    for m in "${mechanisms[@]}"; do
        python -m benchmark "${common[@]}" dataset.seed=$1 seed=0 mechanism=$m "arm=${control[$m]},lr" >> "$log" 2>&1
        rc=$?
        python -m benchmark "${common[@]}" dataset.seed=$1 seed=0 mechanism=$m dataset.knockout=true \
            "arm=${control[$m]}" >> "$log" 2>&1
        echo "gate data seed $1 $m done $(date -u) rc=$rc,$?" >> "$here/status.txt"
    done
}
case "$stage" in
gate) gate 0 ;;
gate_seeds) gate 1; gate 2 ;;
max)
    python -m benchmark "${common[@]}" dataset.seed=0 seed=0 mechanism=sequence_max \
        arm=deepfm,din,mian_din,mian_product >> "$log" 2>&1
    echo "max done $(date -u) rc=$?" >> "$here/status.txt" ;;
rest)
    python -m benchmark "${common[@]}" >> "$log" 2>&1
    rc=$?
    for m in "${mechanisms[@]}"; do
        python -m benchmark "${common[@]}" mechanism=$m dataset.knockout=true "arm=${control[$m]}" >> "$log" 2>&1
        rc="$rc,$?"
    done
    echo "rest done $(date -u) rc=$rc" >> "$here/status.txt" ;;
pack)
    tmp=$(mktemp -d)
    python -c "import sqlite3, sys; d = sqlite3.connect(sys.argv[2]); sqlite3.connect(sys.argv[1]).backup(d); d.close()" \
        "$here/mlflow.db" "$tmp/mlflow.db"
    if [ -d "$here/mlartifacts" ]; then cp -r "$here/mlartifacts" "$tmp/"; fi
    tar -czf "$here/runs.tar.gz" -C "$tmp" $(cd "$tmp" && ls)
    rm -rf "$tmp" ;;
*)
    echo "unknown stage $stage: gate, max, gate_seeds, rest or pack" >&2; exit 2 ;;
esac
