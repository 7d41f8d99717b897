#!/usr/bin/env bash
# The tuning track on the calibrated benchmark (issue "An equal-budget tuning track", first chunk sized for the
# 2-core CPU beside two other lanes): mechanism sequence_max (the candidate resembles the most similar past
# behaviour), tier S, data seed 0, where under `shared` DeepFM captures 0.26 of the lift, DIN 0.02 and MIAN none.
# Registered before the runs: does an equal tuning budget on validation let DIN and MIAN (literal reading) capture
# the max-form sequence effect? Arms deepfm, din, mian_additive; the same budget for each, 6 trials of at most 6
# epochs (TPE, median pruner), studies in optuna.db; then each arm's best configuration tested once over training
# seeds 0-2 as protocol `tuned` (experiment=effects, so the mechanisms report reads them as lift captured).
# Measured first: a DeepFM trial epoch takes about 8 s here, DIN's about 50 s, MIAN's about 65 s (loaded CPU), so
# the chunk costs about 1.5 CPU-hours. One job at a time with 1 torch thread; MLflow store mlflow.db.
# Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT): CHECKOUT=<that checkout> bash run.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
stores=("tune.storage=sqlite:///$here/optuna.db" "tracking.uri=sqlite:///$here/mlflow.db")
data=(experiment=effects mechanism=sequence_max dataset.seed=0 trainer.progress=false trainer.eval_batch_size=1024)
python -m benchmark.tune arm=deepfm,din,mian_additive "${data[@]}" tune.trials=6 tune.max_epochs=6 "${stores[@]}" \
    >> "$here/tune.log" 2>&1
echo "tune done $(date -u) rc=$?" >> "$here/status.txt"
python -m benchmark "${data[@]}" protocol=tuned arm=deepfm,din,mian_additive seed=0,1,2 "${stores[@]}" \
    >> "$here/tuned.log" 2>&1
echo "tuned done $(date -u) rc=$?" >> "$here/status.txt"
