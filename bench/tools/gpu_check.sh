#!/usr/bin/env bash
# The GPU check behind bench/PERF.md's GPU section, as one time-boxed script (a lent GPU machine is short-lived):
# machine facts, training throughput per precision x memory format x torch.compile, the cached-feature probe's
# saving, the ci-gpu suite's vision cells (5 strategies x 3 seeds at 224 px) and the gpu-marked tests.
#   OUT=out/gpu bash bench/tools/gpu_check.sh      (needs a CUDA device; TRANSFERBENCH_CACHE with the assets)
# Each step has its own time limit so a slow one cannot take the others' figures with it.
set -uo pipefail
OUT=${OUT:-out/gpu}
PY=${PYTHON:-python3}
RESULTS=${RESULTS:-/tmp/tb-ci-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

step() {  # step NAME SECONDS COMMAND...: run one step, its output to the console and $OUT/NAME.log, timed
  local name=$1 limit=$2; shift 2
  echo "=== $name: $* (limit ${limit}s)"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  echo "=== $name: rc=${PIPESTATUS[0]} in $((SECONDS - t0)) s" | tee -a "$OUT/$name.log"
}

step env 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv;
  $PY -c 'import torch, timm, transformers; print(\"torch\", torch.__version__, \"timm\", timm.__version__,
  \"transformers\", transformers.__version__, torch.cuda.get_device_name())'"
step throughput 200 $PY -m bench.tools.perf throughput --model tf_efficientnet_lite0 --image-size 224 --batch 256 \
  --steps 30 --epochs 3
step probe 90 $PY -m bench.tools.perf probe --model tf_efficientnet_lite0 --image-size 224 --samples 20000
step ci_gpu_vision 220 $PY -m bench.cli run ci-gpu --only task=fashion-mnist --results "$RESULTS"
step summary 30 $PY -m bench.cli summary "$RESULTS"
cp "$RESULTS"/results.csv "$OUT"/ci_gpu_vision.csv 2>/dev/null || ls "$RESULTS" | tee -a "$OUT/summary.log"
step gpu_tests 60 $PY -m pytest -q -m gpu -p no:cacheprovider tests/run/test_probe.py
