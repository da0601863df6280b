"""The ``introspect`` lm-eval model: lm-eval's HF model that knows model aliases and shares weights.

``--model introspect --model_args pretrained=smollm2-135m-instruct`` resolves the alias
through the model-alias hook, then behaves exactly like ``--model hf``. The loaded model
is published in `ground_truth.subject.shared_models`, so an introspect task whose
subject is this same model (self-explanation) runs these weights for its ground truth
instead of loading a second copy.
"""

from __future__ import annotations

from typing import Any

import lm_eval.models  # noqa: F401  fill lm-eval's model table first: registering into an

# empty table makes lm-eval skip its own lazy registrations, and `--model hf` disappears.
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from ground_truth.architecture import check_source_architecture
from ground_truth.subject import LoadedModel, ModelSpec, check_peft, resolve_source, shared_models
from harness_plugins.errors import IntrospectError
from harness_plugins.lm_eval_adapter import MODEL_NAME
from harness_plugins.models import register_live_model
from harness_plugins.registry import get_registry


@register_model(MODEL_NAME)
class IntrospectLM(HFLM):
    """`HFLM` plus model aliases and weight sharing with introspect tasks."""

    def __init__(self, pretrained: Any, peft: str | None = None, **kwargs: Any) -> None:
        # lm-eval mixes model arguments into task metadata: knowing them exactly lets tasks
        # reject every other unknown key as a misspelt option (`models.model_arguments`)
        self.argument_names = {"pretrained", "peft", *kwargs}
        if not isinstance(pretrained, str):  # an already-loaded model object
            super().__init__(pretrained=pretrained, peft=peft, **kwargs)
            self.loaded, self.projections = None, None
            register_live_model(self)
            return
        spec = ModelSpec.from_arguments({**kwargs, "pretrained": pretrained, "peft": peft})
        source = resolve_source(spec, get_registry().model_aliases)  # clear error for bad names
        check_peft(spec)
        check_source_architecture(
            source.path, gguf_file=source.gguf_file, trust_remote_code=spec.trust_remote_code
        )
        if source.gguf_file:
            kwargs["gguf_file"] = source.gguf_file
        super().__init__(pretrained=source.path, peft=peft, **kwargs)
        from harness_plugins.prompts.projections import load_projections

        self.projections = load_projections(peft)  # None: slots hold the fixed map's vectors
        self.loaded = LoadedModel(spec=spec, model=self.model, tokenizer=self.tokenizer)
        shared_models[spec] = self.loaded
        register_live_model(self)

    # ------------------------------------------------------------------ vector prompts

    def _vector_backend(self) -> Any:
        from ground_truth.backends.hf import HFBackend

        if getattr(self, "_introspect_backend", None) is None:
            size = self.batch_size_per_gpu if isinstance(self.batch_size_per_gpu, int) else 8
            self._introspect_backend = HFBackend(
                self.loaded, batch_size=max(1, size), progress=True
            )
        return self._introspect_backend

    def _encode_marked(self, text: str, row: int) -> tuple[list[int], list[Any]]:
        """Token ids with one placeholder per vector slot, and the writes the markers ask for."""
        from ground_truth.primitive import Write
        from harness_plugins.prompts import vectors

        placeholder = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.eot_token_id
        )
        try:
            ids, slots, blocks = vectors.encode(
                text,
                lambda piece, first: self.tok_encode(
                    piece, add_special_tokens=None if first else False
                ),
                placeholder,
            )
        except ValueError as error:
            raise IntrospectError(str(error)) from None
        read = self.projections.slot_value if self.projections is not None else vectors.vector
        writes = [Write("hook_embed", row, position, read(key)) for position, key in slots]
        writes += [
            Write(site, row, position, vectors.vector(key), mode, onward)
            for position, site, key, mode, onward in blocks
        ]
        return ids, writes

    def _split(self, requests: list[Any]) -> tuple[list[int], list[int]]:
        from harness_plugins.prompts import vectors

        marked = [i for i, r in enumerate(requests) if vectors.has_markers(r.args[0])]
        if marked and self.loaded is None:
            raise IntrospectError(
                "vector prompts need the introspect model loaded from a name, not an object"
            )
        return marked, [i for i in range(len(requests)) if i not in set(marked)]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        marked, plain = self._split(requests)
        if not marked:
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        results: list[Any] = [None] * len(requests)
        if plain:
            for i, text in zip(
                plain,
                super().generate_until([requests[i] for i in plain], disable_tqdm),
                strict=True,
            ):
                results[i] = text
        groups: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        for i in marked:
            kwargs = requests[i].args[1]
            if kwargs.get("do_sample"):
                raise IntrospectError(
                    "prompts with vectors are decoded greedily; drop do_sample/temperature"
                )
            key = (
                int(kwargs.get("max_gen_toks", self.max_gen_toks)),
                tuple(kwargs.get("until") or ()),
            )
            groups.setdefault(key, []).append(i)
        for (max_tokens, until), indices in groups.items():
            encoded = [
                self._encode_marked(requests[i].args[0], row) for row, i in enumerate(indices)
            ]
            tokens = self._vector_backend().generate(
                [ids for ids, _ in encoded],
                max_new_tokens=max_tokens,
                writes=[w for _, ws in encoded for w in ws],
                stop_token_ids=[self.eot_token_id],
                stop_when=self._stop_when(until),
                description="introspect: explainer with vectors",
            )
            for i, new in zip(indices, tokens, strict=True):
                text = self.tok_decode(new)
                for stop in until:
                    text = text.split(stop)[0]
                results[i] = text
                self.cache_hook.add_partial("generate_until", requests[i].args, text)
        return results

    def _stop_when(self, until: tuple[str, ...]) -> Any:
        """A row is done as soon as its decoded text holds one of lm-eval's ``until``
        strings (lm-eval cuts the answer there anyway: generating on is waste)."""
        if not until:
            return None

        def stop_when(tokens: list[int]) -> bool:
            text = self.tok_decode(tokens)
            return any(stop in text for stop in until)

        return stop_when

    def loglikelihood(
        self, requests: list[Any], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        marked, plain = self._split(requests)
        if not marked:
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        results: list[Any] = [None] * len(requests)
        if plain:
            for i, value in zip(
                plain,
                super().loglikelihood([requests[i] for i in plain], disable_tqdm),
                strict=True,
            ):
                results[i] = value
        sequences, writes, starts = [], [], []
        for row, i in enumerate(marked):
            context, continuation = requests[i].args
            spaces = len(context) - len(context.rstrip())
            if spaces:  # lm-eval's convention: trailing spaces belong to the continuation
                context, continuation = context[:-spaces], context[-spaces:] + continuation
            ids, row_writes = self._encode_marked(context, row)
            starts.append(len(ids))
            sequences.append(ids + self.tok_encode(continuation, add_special_tokens=False))
            writes += row_writes
        scored = self._vector_backend().forward(
            sequences,
            writes=writes,
            score_from=starts,
            description="introspect: explainer loglikelihood with vectors",
        )
        for row, i in enumerate(marked):
            value = (float(scored.token_logprobs[row].sum()), bool(scored.greedy[row]))
            results[i] = value
            self.cache_hook.add_partial("loglikelihood", requests[i].args, value)
        return results
