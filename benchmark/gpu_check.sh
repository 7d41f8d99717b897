#!/usr/bin/env bash
# Everything that needs a GPU, as one command with a time budget:
#   1. bench   the efficiency benchmark (benchmark/bench.py), alone on the GPU so its timings are clean; it also
#              checks per model that graphed and eager steps give the same losses.
#   2. tables  Tables 2-4 on MovieLens (ml-1m-part) as three Hydra multiruns side by side (joblib workers; with
#              CUDA MPS when the machine allows it, so the small kernels of several jobs share the GPU), each into
#              its own SQLite store under $RUNS_DIR; stopped at the deadline (a stopped job's run is KILLED and
#              the report leaves it out; the sweeps are seed-major, so whole seeds finish first).
#   3. tests   the CUDA tests (tests/test_cuda_graph.py), beside the tables.
# Results: $OUT (else results/efficiency/): <machine>.md/.csv from the benchmark, the logs, and runs.tar.gz (the
# stores, their artifacts and the Hydra job logs, at the archive's root: commit it as results/runs/<name>/runs.tar.gz,
# add its stores to results/runs/stores.txt and report with --stores results/runs; nothing to unpack).
#
# On the machine that has ../shared (once): the wheels the GPU image lacks and the MovieLens files
#   mkdir -p .whl .mldata && cp ../shared/device-wheels/*.whl .whl/ && cp ../shared/data/ml-1m-part/* .mldata/
#   printf '/.whl/\n/.mldata/\n' >> .git/info/exclude
# then on the GPU machine, from the checkout (carrying .whl and .mldata):
#   BENCHMARK_GIT_COMMIT=<git rev-parse HEAD> BUDGET_S=520 bash benchmark/gpu_check.sh
# (the copy of the tree on the GPU machine may carry another commit's .git: every run and table records this one)
# Environment knobs: BUDGET_S (whole script), STAGES ("bench tables tests"), SEEDS (0,1,2), BENCH_ARGS, BENCH_S,
# SWEEPS (below), TESTS, TABLE_ARGS (extra overrides for every table job), DATASET (movielens), RAW_DIR (.mldata), RUNS_DIR (/work/gpu-runs).
set -uo pipefail
T0=$(date +%s)
BUDGET_S=${BUDGET_S:-520}
STAGES=${STAGES:-bench tables tests}
SEEDS=${SEEDS:-0,1,2}
DATASET=${DATASET:-movielens}
RAW_DIR=${RAW_DIR:-$PWD/.mldata}
RUNS_DIR=${RUNS_DIR:-/work/gpu-runs}
OUT_DIR=${OUT:-results/efficiency}
PY=${PYTHON:-python3}
BENCH_ARGS=${BENCH_ARGS:---models mian,din,dien,dcn,lr,wide_deep,deepfm,xdeepfm --batch-sizes 128,2048 --steps 40 --repeats 3 --compile-models mian}
TABLE_ARGS=${TABLE_ARGS:-}
# One sweep per line: <experiment> <parallel jobs with MPS> [overrides]; each into its own store.
SWEEPS=${SWEEPS:-"table2 8 seed=$SEEDS
table3 5 seed=$SEEDS
table4 3 seed=$SEEDS"}
TESTS=${TESTS:-}  # a pytest -k expression: only those CUDA tests
mkdir -p "$OUT_DIR" "$RUNS_DIR"
LOG="$OUT_DIR/gpu_check.log"
left() { echo $(( BUDGET_S - ($(date +%s) - T0) )); }
say() { echo "[gpu_check +$(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }

if [ -d .whl ] && ! $PY -c "import hydra, mlflow, deepctr_torch" 2>/dev/null; then
    $PY -m pip install -q --no-index --find-links .whl mlflow-skinny==3.17.2 hydra-core==1.3.2 \
        hydra-joblib-launcher==1.2.0 sqlalchemy alembic deepctr-torch==0.3.0 2>&1 | tail -3 || exit 1
fi
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc;
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"; } 2>&1 | tee -a "$LOG"

if has bench; then
    BENCH_S=${BENCH_S:-$(( $(left) - 300 ))}
    say "bench (at most ${BENCH_S}s)"
    timeout "$BENCH_S" $PY -m benchmark.bench $BENCH_ARGS --out "$OUT_DIR" 2>&1 | tee -a "$LOG"
fi

sweep_pids=()
if has tables; then
    # MPS lets the kernels of several processes run at once; without it the jobs take turns on the GPU.
    divide=1
    if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d 2>>"$LOG" \
        && timeout 60 $PY -c "import torch; torch.ones(1, device='cuda').sum().item()" 2>>"$LOG"; then
        say "CUDA MPS on"
    else
        say "CUDA MPS not available: a third of the parallel jobs"
        echo quit | nvidia-cuda-mps-control 2>/dev/null
        divide=3
    fi
    if [ "$DATASET" = movielens ]; then
        DATA_ARGS="dataset=movielens dataset.raw_dir=$RAW_DIR"
        say "building the MovieLens cache"
        $PY -m benchmark.data stats movielens --raw-dir "$RAW_DIR" > "$RUNS_DIR/movielens_stats.json" 2>>"$LOG"
    else
        DATA_ARGS="dataset=$DATASET"
    fi
    k=0
    while read -r experiment n_jobs overrides; do
        [ -n "$experiment" ] || continue
        k=$((k + 1)); n_jobs=$(( n_jobs / divide > 0 ? n_jobs / divide : 1 ))
        say "sweep $k: $experiment, $n_jobs parallel jobs, $overrides"
        setsid $PY -m benchmark experiment=$experiment $DATA_ARGS $overrides hydra/launcher=local_parallel \
            hydra.launcher.n_jobs=$n_jobs tracking.uri="sqlite:///$RUNS_DIR/$experiment-$k.db" \
            $TABLE_ARGS > "$OUT_DIR/sweep_${k}_$experiment.log" 2>&1 &
        sweep_pids+=($!)
    done <<< "$SWEEPS"
fi

if has tests; then
    say "CUDA tests"
    timeout $(( $(left) > 150 ? 150 : $(left) - 30 )) $PY -m pytest -q -p no:cacheprovider -m "slow or not slow" \
        ${TESTS:+-k "$TESTS"} tests/test_cuda_graph.py > "$OUT_DIR/cuda_tests.log" 2>&1
    say "CUDA tests exit $?: $(tail -1 "$OUT_DIR/cuda_tests.log")"
fi

any_alive() { for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
if [ ${#sweep_pids[@]} -gt 0 ]; then
    while [ "$(left)" -gt 25 ] && any_alive "${sweep_pids[@]}"; do sleep 5; done
    for pid in "${sweep_pids[@]}"; do kill -TERM -- -"$pid" 2>/dev/null; done  # running jobs end as KILLED
    sleep 8
    for pid in "${sweep_pids[@]}"; do kill -KILL -- -"$pid" 2>/dev/null; done
    say "sweeps ended; finished runs per store:"
    for db in "$RUNS_DIR"/*.db; do
        $PY - "$db" <<'EOF' 2>&1 | tee -a "$LOG"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
print(sys.argv[1], dict(con.execute("select status, count(*) from runs group by status").fetchall()))
EOF
    done
    echo quit | nvidia-cuda-mps-control 2>/dev/null
    cp -r multirun "$RUNS_DIR/hydra-multirun" 2>>"$LOG"
    tar czf "$OUT_DIR/runs.tar.gz" -C "$RUNS_DIR" . 2>>"$LOG"
fi
say "done"
