#!/usr/bin/env bash
# The speed checks that need a GPU, in one command: the CUDA tests (graphed == eager, no host sync, fallback,
# compile) and the efficiency benchmark. Results go to $OUT (the device tool's folder), else results/efficiency/.
#
# On the machine that has ../shared (once): the wheels the GPU image lacks (../shared/device-wheels/README.md)
#   mkdir -p .whl && cp ../shared/device-wheels/*.whl .whl/ && (grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude)
# Then, through the device tool: carry [".whl"], timeout_s 590, command
#   BENCH_GIT_COMMIT=<git rev-parse HEAD> bash benchmark/gpu_check.sh
# Extra arguments go to the benchmark (e.g. --steps 20 to make it shorter). The benchmark rewrites its table after
# every model, so a run cut short still leaves the models it finished. Copy $OUT's nvidia-*.md/.csv into
# results/efficiency/ and commit them.
set -uo pipefail
OUT_DIR=${OUT:-results/efficiency}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
if [ -d .whl ]; then
    $PY -m pip install -q --no-index --find-links .whl mlflow-skinny==3.17.2 hydra-core==1.3.2 \
        hydra-joblib-launcher==1.2.0 sqlalchemy alembic deepctr-torch==0.3.0 2>&1 | tail -3 || exit 1
fi
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"; } 2>&1 | tee "$LOG"
# The benchmark first (it also checks graphed == eager per model), then the CUDA tests.
timeout 380 $PY -m benchmark.bench --models mian,din,dien,dcn,lr,wide_deep,deepfm,xdeepfm --batch-sizes 128,2048 \
    --steps 50 --repeats 4 --compile-models mian --out "$OUT_DIR" "$@" 2>&1 | tee -a "$LOG"
timeout 150 $PY -m pytest -q -p no:cacheprovider -m "slow or not slow" tests/test_cuda_graph.py 2>&1 | tee -a "$LOG"
