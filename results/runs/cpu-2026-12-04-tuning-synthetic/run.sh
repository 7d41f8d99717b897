#!/usr/bin/env bash
# The tuning track's demonstration (README "Tuning"): on the default synthetic data (1,000 users), the arms DIN,
# DeepFM and MIAN get the same budget, 8 trials of at most 5 epochs each, tuned on validation (TPE, median pruner),
# one study each in optuna.db; then each arm's best configuration is tested once over the 5 training seeds as
# protocol `tuned`. The 2-core CPU, one job at a time with 1 torch thread; the MLflow store is mlflow.db (packed
# with its artifacts as runs.tar.gz). Run from a checkout of the commit it names (BENCHMARK_GIT_COMMIT).
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "${CHECKOUT:-$here/../../..}" && source "${VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BENCHMARK_GIT_COMMIT=$(git rev-parse HEAD)
stores=("tune.storage=sqlite:///$here/optuna.db" "tracking.uri=sqlite:///$here/mlflow.db")
python -m benchmark.tune arm=din,deepfm,mian dataset=synthetic trainer.progress=false tune.trials=8 tune.max_epochs=5 \
    "${stores[@]}" > "$here/tune.log" 2>&1
echo "tune done $(date -u) rc=$?" >> "$here/status.txt"
python -m benchmark experiment=table2 protocol=tuned dataset=synthetic model=din,deepfm,mian seed=0,1,2,3,4 \
    trainer.progress=false "${stores[@]}" > "$here/tuned.log" 2>&1
echo "tuned done $(date -u) rc=$?" >> "$here/status.txt"
# Then (run as a second step when the runs above had finished): the store packed as the other folders are, the
# sweep logs' paths made relative, and the tuning section written from this store alone (it is not listed in
# results/runs/stores.txt, so the other committed tables stay as they are) and copied to results/.
cd "$here" && tar -czf runs.tar.gz mlflow.db mlartifacts && rm -rf mlflow.db mlartifacts && cd - > /dev/null
python -m benchmark.stores "$here/tune.log" "$here/tuned.log"
out=results/runs/cpu-2026-12-04-tuning-synthetic/report  # relative: the report names its command in its files
python -m benchmark.report --stores results/runs/cpu-2026-12-04-tuning-synthetic --out "$out" > /dev/null
cp "$out/tuning.md" "$out/tuning.csv" "$out/tuning_trials.csv" results/ && cp "$out/figures/tuning_synthetic.png" results/figures/
rm -rf "$out"
