#!/usr/bin/env bash
# The main job (`tox -e demo`): SmolLM2-135M-Instruct as a self-explainer across explanation
# types (0-shot and 2-shot), one cross-explanation row against Gemma 3 270M, report cards (every
# score beside its floor and ceiling) and the plots. CPU only, offline; results under ${1:-results}.
set -euo pipefail
out="$(realpath -m "${1:-results}")"
limit="${DEMO_LIMIT:-20}"
model=smollm2-135m-instruct
common=(--model introspect --batch_size 16 --log_samples)

echo "== self-explanation: $model explains itself (--limit $limit)"
lm_eval "${common[@]}" --model_args "pretrained=$model" \
    --tasks introspect_input_ablation,introspect_activation_patching,introspect_patchscope_next_token \
    --metadata '{"layers": "every:3"}' --limit "$limit" --output_path "$out/self" \
    --wandb_args project=lm-eval-introspect,mode=offline

echo "== self-explanation, 2-shot: the untrained explainer shown the answer format (--limit $limit)"
lm_eval "${common[@]}" --model_args "pretrained=$model" \
    --tasks introspect_input_ablation,introspect_activation_patching --num_fewshot 2 \
    --limit "$limit" --output_path "$out/self_2shot"

echo "== cross-explanation: $model explains gemma-3-270m (input ablation, --limit $limit)"
lm_eval "${common[@]}" --model_args "pretrained=$model" \
    --tasks introspect_input_ablation --metadata '{"subject": "gemma-3-270m"}' \
    --limit "$limit" --output_path "$out/cross"

# every score beside its floor (the shuffled oracle) and ceilings (best constant, oracle)
introspect report "$out/self" --controls
introspect report "$out/self_2shot" --controls
introspect report "$out/cross" --controls
introspect plot "$out/self" --out "$out/plots"
