#!/usr/bin/env bash
# The calibration figures of docs/results.md: SmolLM2-135M-Instruct on the causal types at
# --limit 50 (untrained 0-shot and 2-shot; the shuffled-oracle floor, the oracle and the
# best constant through `--model introspect_control`), and the injected-thought yes-bias
# control at --limit 20. CPU, offline; results and report cards under ${1:-results/calibration}.
set -euo pipefail
out="$(realpath -m "${1:-results/calibration}")"
model=smollm2-135m-instruct
causal=introspect_input_ablation,introspect_activation_patching
mkdir -p "$out"
for shots in 0 2; do
    echo "== untrained $model, $shots-shot"
    lm_eval --model introspect --model_args "pretrained=$model" --batch_size 16 \
        --tasks "$causal" --limit 50 --num_fewshot "$shots" --log_samples \
        --output_path "$out/untrained_${shots}shot"
done
echo "== report card with controls (shuffled-oracle floor, oracle)"
introspect report "$out/untrained_0shot" --controls | tee "$out/report_0shot.txt"
introspect report "$out/untrained_2shot" | tee "$out/report_2shot.txt"
echo "== the oracle alone (1.0 on every answer metric: the scorer's check)"
lm_eval --model introspect_control --model_args control=oracle --tasks "$causal" \
    --metadata "{\"subject\": \"$model\"}" --limit 50 --output_path "$out/oracle"
echo "== the best constant answer (on exact_match)"
lm_eval --model introspect_control --model_args control=constant --tasks "$causal" \
    --metadata "{\"subject\": \"$model\"}" --limit 50 --output_path "$out/constant"
echo "== injected thoughts with the yes-bias control"
lm_eval --model introspect --model_args "pretrained=$model" --batch_size 16 \
    --tasks introspect_injected_thoughts --limit 20 --log_samples --output_path "$out/injected"
introspect report "$out/injected" | tee "$out/report_injected.txt"
