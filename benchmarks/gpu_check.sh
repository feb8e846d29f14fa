#!/usr/bin/env bash
# What changes on a GPU, checked on one. Every component picks CUDA by itself when there is one (the local
# backend, IQL, the LoRA trainers with bf16, evaluation), so the tests of those components run there as
# they are; then generation throughput (float32, the evaluation's dtype, and bfloat16) and training speed.
#
# usage: benchmarks/gpu_check.sh [OUT_DIR]        (default runs/gpu-check; logs and figures are written there)
# environment: PYTHON (default python3), EMONEG (default `$PYTHON -m emoneg_bench.cli`), TEST_TIMEOUT (s, 300),
#   STAGES (default "tests generation training"), IQL_STEPS (timed IQL steps, default 5000)
set -u
out=${1:-runs/gpu-check}
python=${PYTHON:-python3}
emoneg=${EMONEG:-$python -m emoneg_bench.cli}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$out"
$python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))" \
  || exit 1
started=$(date +%s)
stage() { echo "== $(($(date +%s) - started))s $*"; }
wants() { case " ${STAGES:-tests generation training} " in *" $1 "*) return 0;; esac; return 1; }

if wants tests; then
stage "tests of the components that choose the device"
timeout "${TEST_TIMEOUT:-300}" $python -m pytest -q -p no:cacheprovider --durations=10 \
  tests/test_local_backend.py tests/test_iql.py tests/test_baselines.py tests/test_lm_agents.py 2>&1 \
  | tee "$out/tests.log" | tail -40
fi

if wants generation; then
stage "generation throughput, SmolLM2"
$python benchmarks/generation_throughput.py --batches 1,8,32,64,128 2>&1 | tee "$out/generation-float32.txt"
$python benchmarks/generation_throughput.py --batches 1,32,128 --dtype bfloat16 2>&1 | tee "$out/generation-bfloat16.txt"
fi

if wants training; then
stage "training speed (IQL on the small release; SmolLM2 LoRA-SFT and JPO at batch 16)"
[ -d "$out/release" ] || $emoneg build builders/configs/emoneg-v1.yaml --profile small --out "$out/release" --quiet
$python benchmarks/train_speed.py --release "$out"/release/* --repeat 1 --steps "${IQL_STEPS:-5000}" \
  --lora-steps 10 --lora-batch 16 2>&1 | tee "$out/train-speed.txt"
fi
stage "done"
