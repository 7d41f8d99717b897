#!/usr/bin/env bash
# experiment=effects on the calibrated data (benchmark/data/calibrated.py, tier S), on the 2-core CPU: one job at a
# time with 1 torch thread (the other core runs other sweeps). What the table tests is registered in
# conf/experiment/effects.yaml. Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT); the store is
# mlflow.db beside this script (packed as runs.tar.gz with its mlartifacts/), each stage's log sweep_<stage>.log.
#   gate   every mechanism's gate: its positive control and LR on the planted data, the control on the knock-out
#          data; data seed 0, training seed 0 (21 jobs, about 25 minutes)
#   max    the sequence `max` form, data seed 0, training seed 0: DeepFM, DIN, MIAN din and MIAN product readout
#          (4 jobs, about 45 minutes)
#   rest   the whole grid (3 data seeds x 3 training seeds x 7 mechanisms x 15 arms, and every knock-out control):
#          about 165 hours of one core at the measured times, the run a GPU (or many cores) is for; the jobs
#          already in the store are run again (the report keeps the latest run of a cell and seed)
#   ./run.sh gate && ./run.sh max      # what this folder's store holds
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
common=(experiment=effects trainer.progress=false trainer.eval_batch_size=1024 "tracking.uri=sqlite:///$here/mlflow.db")
declare -A control=([sequence_share]=fm [sequence_max]=max_sim [sequence_softmax]=product_attn [user_bilinear]=fm
                    [user_threeway]=tensor_fact [context_bilinear]=fm [context_threeway]=tensor_fact)
mechanisms=(sequence_share sequence_max sequence_softmax user_bilinear user_threeway context_bilinear context_threeway)
stage=${1:?name a stage: gate, max or rest}
log="$here/sweep_$stage.log"
case "$stage" in
gate)
    for m in "${mechanisms[@]}"; do
        python -m benchmark "${common[@]}" dataset.seed=0 seed=0 mechanism=$m "arm=${control[$m]},lr" >> "$log" 2>&1
        python -m benchmark "${common[@]}" dataset.seed=0 seed=0 mechanism=$m dataset.knockout=true \
            "arm=${control[$m]}" >> "$log" 2>&1
        echo "gate $m done $(date -u) rc=$?" >> "$here/status.txt"
    done ;;
max)
    python -m benchmark "${common[@]}" dataset.seed=0 seed=0 mechanism=sequence_max \
        arm=deepfm,din,mian_din,mian_product >> "$log" 2>&1
    echo "max done $(date -u) rc=$?" >> "$here/status.txt" ;;
rest)
    python -m benchmark "${common[@]}" >> "$log" 2>&1
    for m in "${mechanisms[@]}"; do
        python -m benchmark "${common[@]}" mechanism=$m dataset.knockout=true "arm=${control[$m]}" >> "$log" 2>&1
    done
    echo "rest done $(date -u) rc=$?" >> "$here/status.txt" ;;
*)
    echo "unknown stage $stage: gate, max or rest" >&2; exit 2 ;;
esac
