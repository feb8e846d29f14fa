#!/usr/bin/env bash
# Every SmolLM2 policy of the paper's comparison on one GPU, in minutes rather than CPU-days:
#   IQL run (given) → LoRA-SFT and emotion-free SFT (in parallel) → JPO from the SFT adapter,
#   and each policy evaluated on LIMIT evenly spaced tasks per domain of `test` and
#   `test_unseen_counterparty` as soon as what it needs exists (evaluations run in parallel: one GPU has
#   room for many 135M-parameter models, and a single evaluation leaves it mostly idle).
# Evaluations are float32 and greedy (reproducible); training is bf16 on the GPU. On an H200 (LIMIT 25,
# SFT 200 steps): SFT 231 s with the first evaluations beside it, evaluations 90-191 s each (see
# benchmarks/README.md). Then score per split:  emoneg score OUT/results/*__test.parquet --table main
# (policy x domain, bootstrap CIs), and over both splits --table metrics and --table ablation.
#
# usage: benchmarks/gpu_policy_table.sh RELEASE IQL_RUN OUT [LIMIT] [SFT_STEPS] [JPO_STEPS]
#   RELEASE    the default release folder (emoneg build builders/configs/emoneg-v1.yaml --out releases/)
#   IQL_RUN    emoneg train iql --release RELEASE --out IQL_RUN
#   LIMIT      tasks per domain and split (default 25: 100 episodes per policy and split)
#   SFT_STEPS  LoRA-SFT steps at batch $BATCH (default 300, batch 16); JPO_STEPS likewise (default 100)
# environment: EMONEG (the command, default `emoneg`), MODEL (smollm2 or a model folder), BATCH (16),
#   THREADS (CPU threads per job, 2)
set -u
if [ $# -lt 3 ]; then sed -n 2,18p "$0"; exit 2; fi
release=$1 iql=$2 out=$3 limit=${4:-25} sft_steps=${5:-300} jpo_steps=${6:-100}
batch=${BATCH:-16} emoneg=${EMONEG:-emoneg} model=${MODEL:-smollm2}
export OMP_NUM_THREADS=${THREADS:-2} HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
mkdir -p "$out/runs" "$out/results" "$out/logs"
[ -e "$out/runs/iql" ] || cp -r "$iql" "$out/runs/iql"
started=$(date +%s)

job() {  # job NAME COMMAND…: run in the background, log to logs/NAME.log, report when it ends
  local name=$1; shift
  (
    local t0; t0=$(date +%s)
    "$@" > "$out/logs/$name.log" 2>&1
    local rc=$?
    echo "$(($(date +%s) - started))s  $name: exit $rc after $(($(date +%s) - t0))s"
  ) &
}

evaluate() {  # evaluate POLICY: both splits, in the background
  for split in test test_unseen_counterparty; do
    job "eval-$1-$split" $emoneg eval --policy "$1" --runs "$out/runs" --release "$release" --split "$split" \
      --limit "$limit" --model "$model" --batch-size 256 --quiet --out "$out/results/$1__$split.parquet"
  done
}

train_sft() {  # train_sft NAME [--no-emotion]
  $emoneg train sft --release "$release" --iql "$out/runs/iql" --out "$out/runs/$1" --model "$model" \
    --max-steps "$sft_steps" --batch-size "$batch" --save-steps 100 --quiet "${@:2}"
}

job sft train_sft sft
sft_job=$!
job emotion-free-sft train_sft emotion-free-sft --no-emotion
free_job=$!
for policy in vanilla-slm random-emotion iql-only; do evaluate "$policy"; done

wait "$free_job"
evaluate emotion-free-sft
wait "$sft_job"
evaluate emodistill-sft
job jpo $emoneg train jpo --release "$release" --sft "$out/runs/sft" --out "$out/runs/jpo" --max-steps "$jpo_steps" \
  --batch-size "$batch" --max-examples $((jpo_steps * batch)) --save-steps 100 --quiet
wait $!
evaluate emodistill
wait
echo "$(($(date +%s) - started))s  all done; results in $out/results"
