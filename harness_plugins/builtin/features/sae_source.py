"""Feature source ``sae``: the features of a sparse autoencoder in sae-lens' folder layout.

A feature's vector is its (unit-length) decoder row, its layer the block of the SAE's
hook, its exemplars the corpus windows (`harness_plugins.banks.sae_corpus`) where it
fires most, beside random ones, with its per-token activations. Features are chosen by
index (option ``sae_features``) or as the ``sae_top_k`` that fire on the most corpus
tokens. Reference labels come from an optional Neuronpedia-style file (``sae_labels``), or,
with ``sae_labels: concepts``, from the built-in corpus itself: a feature that fires
selectively on one concept's sentences is labelled with that concept (how an SAE trained
offline by `introspect sae train` gets labels a judge can score against). With labels
only labelled features are chosen, without them the label is empty and the
features type scores only what needs no label (detection, simulation_r).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ground_truth.features import Exemplar, Feature, FeatureSource
from harness_plugins.errors import IntrospectError
from harness_plugins.registry import hookimpl


def _rng(*parts: Any) -> Any:
    import hashlib
    import random

    return random.Random(
        int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)
    )


CONCEPT_LABELS = "concepts"
"""``sae_labels`` value: label features by the built-in concept they fire on most selectively."""
SELECTIVITY = 2.0
"""A feature gets a concept label when its mean peak on that concept's sentences lies this
many standard deviations (of its peaks over the corpus) above its mean peak."""


def _labels(options: Mapping[str, Any]) -> dict[int, list[str]]:
    from harness_plugins.builtin.features.sae_labels import load_labels

    if options.get("sae_labels") == CONCEPT_LABELS:
        return {}  # derived from the corpus in `build` (see `concept_labels`)
    return load_labels(options["sae_labels"]) if options.get("sae_labels") else {}


def concept_labels(peaks: Any, owners: Sequence[str | None]) -> dict[int, list[str]]:
    """Feature index -> [concept] for features selective for one concept of the built-in bank.

    ``peaks`` [windows, d_sae]: each window's peak activation; ``owners``: each window's
    concept (None: neutral). Like the neurons source's labels: the concept whose sentences
    drive the feature most, kept when it stands out by `SELECTIVITY` standard deviations.
    """
    import torch

    names = sorted({o for o in owners if o is not None})
    per_concept = torch.stack(
        [peaks[[i for i, o in enumerate(owners) if o == name]].mean(0) for name in names]
    )  # [concepts, d_sae]
    best, which = per_concept.max(0)
    spread = peaks.std(0).clamp_min(1e-6)
    selective = ((best - peaks.mean(0)) / spread >= SELECTIVITY) & (best > 0)
    return {int(i): [names[int(which[i])]] for i in torch.nonzero(selective).flatten().tolist()}


def check_options(options: Mapping[str, Any]) -> None:
    """One clear error for a missing or unreadable SAE, labels file or index, before any model loads."""
    from ground_truth.sae_format import read_config

    if not options.get("sae"):
        raise IntrospectError(
            'features: source \'sae\' needs an SAE folder: --metadata \'{"source": "sae", '
            '"sae": "path/to/sae"}\' (cfg.json + sae_weights.safetensors, as sae-lens saves)'
        )
    cfg = read_config(options["sae"])
    if options.get("sae_labels") == CONCEPT_LABELS and options.get("corpus"):
        raise IntrospectError(
            "features: sae_labels 'concepts' labels features by the built-in sentences; "
            "leave corpus unset, or give a labels file"
        )
    labels = _labels(options)
    bad = [i for i in options.get("sae_features") or () if not 0 <= int(i) < int(cfg["d_sae"])]
    if bad:
        raise IntrospectError(f"features: sae_features {bad[:5]} outside 0..{cfg['d_sae'] - 1}")
    unlabelled = [i for i in options.get("sae_features") or () if labels and int(i) not in labels]
    if unlabelled:
        raise IntrospectError(
            f"features: sae_features {unlabelled[:5]} have no description in {options['sae_labels']}"
        )


def _feature_id(index: int) -> str:
    return f"sae-{index:06d}"


class SaeFeatures(FeatureSource):
    description = "features of a sparse autoencoder (sae-lens folder layout): decoder rows"

    def feature_ids(self, options: Mapping[str, Any]) -> list[str]:
        listed = options.get("sae_features")
        if listed:
            return [_feature_id(int(i)) for i in listed]
        return [f"sae-rank-{rank:04d}" for rank in range(options["sae_top_k"])]

    def build(
        self,
        subject: Any,
        backend: Any,
        options: Mapping[str, Any],
        wanted: Sequence[str] | None = None,
    ) -> dict[str, Feature]:
        """Every chosen feature's decoder row and label; exemplars for the ``wanted`` ids."""
        from ground_truth.sae_format import hook_site, load_sae
        from harness_plugins.banks.sae_corpus import (
            builtin_owners,
            corpus_texts,
            read_windows,
            windows_with_origin,
        )

        check_options(options)
        sae = load_sae(options["sae"])
        at, layer = hook_site(sae.cfg["hook_name"], backend.n_layers)
        if sae.d_in != backend.d_model:
            raise IntrospectError(
                f"features: the SAE reads {sae.d_in}-wide activations but the subject's "
                f"residual stream is {backend.d_model} wide: it was trained on another model"
            )
        labels = _labels(options)
        cut = windows_with_origin(
            corpus_texts(options.get("corpus")), subject.tokenizer, options["window"]
        )
        windows = [w for w, _ in cut]
        residuals = read_windows(subject, backend, at, windows)
        frequency, peaks = _statistics(sae, subject, backend, at, windows, residuals, options)
        if options.get("sae_labels") == CONCEPT_LABELS:
            owners = builtin_owners()
            labels = concept_labels(peaks, [owners[n] for _, n in cut])
        chosen = self._choose(options, frequency, labels)
        ids = self.feature_ids(options)
        wanted_ids = set(ids if wanted is None else wanted)
        features: dict[str, Feature] = {}
        per_token = None
        for fid, index in zip(ids, chosen, strict=False):
            row = sae.W_dec[index]
            texts = labels.get(index, [])
            feature = Feature(
                fid,
                layer,
                (row / row.norm().clamp_min(1e-8)).tolist(),
                texts[0] if texts else "",
                extra={
                    "sae_index": index,
                    "labels": texts,
                    "frequency": round(float(frequency[index]), 6),
                },
            )
            if fid in wanted_ids:
                if per_token is None:
                    per_token = [_encode(sae, r) for r in residuals]
                feature.top_exemplars, feature.random_exemplars = _exemplars(
                    index, peaks, per_token, windows, subject.tokenizer, options
                )
            features[fid] = feature
        return features

    def _choose(
        self, options: Mapping[str, Any], frequency: Any, labels: Mapping[int, list[str]]
    ) -> list[int]:
        """The listed indices, or the top-k by firing frequency (labelled ones only, when labelled)."""
        import torch

        if options.get("sae_features"):
            return [int(i) for i in options["sae_features"]]
        order = torch.argsort(frequency, descending=True, stable=True).tolist()
        labelled = bool(options.get("sae_labels"))
        eligible = [i for i in order if float(frequency[i]) > 0 and (not labelled or i in labels)]
        if len(eligible) < options["sae_top_k"]:
            raise IntrospectError(
                f"features: only {len(eligible)} SAE features fire on the corpus"
                f"{' and have labels' if labelled else ''}; lower sae_top_k "
                f"(now {options['sae_top_k']}) or give a larger corpus"
            )
        return eligible[: options["sae_top_k"]]


def _encode(sae: Any, residual: Any) -> Any:
    """Feature activations at every token of a window, the first counted as 0.

    The first position is the attention sink, with a residual norm far above the rest:
    SAEs are trained without it (`introspect sae train` too) and fire there spuriously.
    """
    acts = sae.encode(residual)
    acts[:1] = 0
    return acts


def _statistics(
    sae: Any, subject: Any, backend: Any, at: str, windows: Any, residuals: Any, options: Any
) -> tuple[Any, Any]:
    """(share of corpus tokens each feature fires on [d_sae], peak per window [windows, d_sae]).

    An artifact keyed by the SAE's content, the subject and the corpus windows.
    """
    import torch

    from ground_truth.artifacts import cached_artifact, content_digest
    from ground_truth.sae_format import sae_digest

    def compute() -> dict[str, Any]:
        fired = torch.zeros(sae.d_sae)
        peaks = []
        for r in residuals:
            acts = _encode(sae, r)
            fired += (acts > 0).float().sum(0)
            peaks.append(acts.max(0).values)
        tokens = sum(len(w) - 1 for w in windows)  # first positions never fire (`_encode`)
        return {"frequency": fired / max(tokens, 1), "peaks": torch.stack(peaks).half()}

    key = {
        "version": 2,  # 2: first token of each window left out
        "sae": sae_digest(options["sae"]),
        "subject": subject.fingerprint,
        "backend": getattr(backend, "name", type(backend).__name__),
        "site": at,
        "windows": content_digest(windows),
    }
    stats = cached_artifact("sae-activations", key, compute)
    return stats["frequency"], stats["peaks"].float()


def _exemplars(
    index: int, peaks: Any, per_token: Any, windows: Any, tokenizer: Any, options: Any
) -> tuple[list[Exemplar], list[Exemplar]]:
    """The ``exemplars`` windows where the feature peaks highest, and as many random others."""
    import torch

    k = options["exemplars"]
    order = torch.argsort(peaks[:, index], descending=True, stable=True).tolist()
    top, rest = order[:k], order[k:]
    drawn = sorted(_rng("sae", options["seed"], index).sample(rest, min(k, len(rest))))

    def exemplar(row: int) -> Exemplar:
        ids = windows[row]
        return Exemplar(
            tokenizer.decode(ids, skip_special_tokens=True),
            tuple(tokenizer.convert_ids_to_tokens(ids)),
            tuple(round(float(a), 4) for a in per_token[row][:, index]),
        )

    return [exemplar(r) for r in top], [exemplar(r) for r in drawn]


@hookimpl
def introspect_register_feature_sources(register: Any) -> None:
    register("sae", SaeFeatures())
