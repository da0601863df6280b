#!/usr/bin/env bash
# The positive control (issue 24, item 4): a trained self-explainer on the feature type
# (concept directions), evaluated on the held-out (test-partition) concepts against every
# control. CPU, one job at a time. Usage:
#   examples/positive_control/run.sh curve    # step 1: learning curve, train partition only
#   examples/positive_control/run.sh train    # step 2: the chosen budget, seeds 0 and 1
#   examples/positive_control/run.sh eval     # step 3: test partition, every control
#   examples/positive_control/run.sh table    # the table (examples/positive_control/table.py)
# Settings (environment): PC_SUBJECT (default smollm2-135m-instruct), PC_OUT
# (default results/positive_control), PC_STEPS, PC_LR, PC_RANK, PC_SEEDS, PC_DEVICE;
# PC_BANK: a training concept bank (make_bank.py) for the curve and training steps only
# (the evaluation always reads the built-in bank's test partition); PC_CURVE_STEPS,
# PC_EVAL_STEPS, PC_EVAL_EXAMPLES, PC_PATIENCE: the curve's length and sampling;
# PC_PROJ_LR: the learned projections' own learning rate (default: PC_LR); PC_PROJ_INIT:
# where they start (fixed, or answer_probe: fitted to the train answers' embeddings);
# PC_EVAL_BANK: evaluate on that bank's test partition instead of the built-in one (its
# held-out concepts: the built-in test concepts plus the written ones), into eval_bank/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline TOKENIZERS_PARALLELISM=false
SUBJECT=${PC_SUBJECT:-smollm2-135m-instruct}
OUT=${PC_OUT:-results/positive_control}/$SUBJECT
STEPS=${PC_STEPS:-15}          # chosen from the held-out curve of step 1 (see README.md)
LR=${PC_LR:-5e-4}
RANK=${PC_RANK:-16}
SEEDS=${PC_SEEDS:-0 1}
DEVICE=${PC_DEVICE:-cpu}
NICE="nice -n 5"
# no simulator or judge: label_match and mc_accuracy only (the simulator scores are not
# what this control is about, and they cost most of the time)
META_BASE='"simulation": false, "judge": "none"'
EVAL=eval
if [ -n "${PC_EVAL_BANK:-}" ]; then
  META_BASE="$META_BASE, \"concepts\": \"$PC_EVAL_BANK\""
  EVAL=eval_bank
fi
META="{\"subject\": \"$SUBJECT\", $META_BASE}"
TRAIN_BASE=$META_BASE
[ -n "${PC_BANK:-}" ] && TRAIN_BASE="$META_BASE, \"concepts\": \"$PC_BANK\""
mkdir -p "$OUT"

case "${1:-}" in
curve)
  # budget selection: held-out slice (24 documents) of the TRAIN partition, never the test one
  $NICE introspect train explainer --subject "$SUBJECT" --types features \
    --metadata "{$TRAIN_BASE}" --out "$OUT/curve" --max_steps "${PC_CURVE_STEPS:-60}" \
    --learning_rate "$LR" --lora_r "$RANK" --eval_steps "${PC_EVAL_STEPS:-15}" \
    --eval_examples "${PC_EVAL_EXAMPLES:-24}" --eval_max_tokens 8 --seed 0 \
    ${PC_PATIENCE:+--early_stop_patience "$PC_PATIENCE"} \
    ${PC_PROJ_LR:+--projection_learning_rate "$PC_PROJ_LR"} \
    ${PC_PROJ_INIT:+--projection_init "$PC_PROJ_INIT"}
  introspect train curve "$OUT/curve" --out "$OUT/curve/learning_curve.png" \
    --title "$SUBJECT features: held-out slice of the train partition"
  ;;
train)
  for seed in $SEEDS; do
    [ -f "$OUT/seed$seed/adapter_model.safetensors" ] && continue
    $NICE introspect train explainer --subject "$SUBJECT" --types features \
      --metadata "{$TRAIN_BASE}" --out "$OUT/seed$seed" --max_steps "$STEPS" \
      --learning_rate "$LR" --lora_r "$RANK" --seed "$seed" \
      ${PC_PROJ_LR:+--projection_learning_rate "$PC_PROJ_LR"} \
      ${PC_PROJ_INIT:+--projection_init "$PC_PROJ_INIT"} \
    ${PC_PROJ_INIT:+--projection_init "$PC_PROJ_INIT"}
  done
  ;;
eval)
  run() {  # name, then lm_eval arguments
    local name=$1; shift
    [ -d "$OUT/$EVAL/$name" ] && return 0
    $NICE lm_eval --tasks introspect_features --device "$DEVICE" --batch_size 16 \
      --log_samples --output_path "$OUT/$EVAL/$name" "$@"
  }
  M="pretrained=$SUBJECT"
  for seed in $SEEDS; do
    run "trained_seed$seed" --model introspect --model_args "$M,peft=$OUT/seed$seed" --metadata "$META"
  done
  run untrained_0shot --model introspect --model_args "$M" --metadata "$META" --num_fewshot 0
  run untrained_2shot --model introspect --model_args "$M" --metadata "$META" --num_fewshot 2
  run nearest_neighbour --model introspect --model_args "$M" \
    --metadata "{\"subject\": \"$SUBJECT\", $META_BASE, \"explainer\": \"nearest_neighbour\"}"
  for seed in $SEEDS; do
    run "no_internals_seed$seed" --model introspect --model_args "$M,peft=$OUT/seed$seed" \
      --metadata "{\"subject\": \"$SUBJECT\", $META_BASE, \"no_internals\": true}"
  done
  run shuffled --model introspect_control --model_args control=shuffled --metadata "$META"
  run constant --model introspect_control --model_args control=constant --metadata "$META"
  ;;
table)
  python examples/positive_control/table.py "$OUT/$EVAL"
  ;;
*)
  sed -n 2,10p "$0"; exit 2 ;;
esac
