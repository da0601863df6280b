"""The logistic-regression probe ``patchscope_attributes`` is compared against.

One probe per (relation, layer), fitted on that relation's train triples and cached as an
artifact keyed by the subject, the layer and those triples (where each was read included).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness_plugins.explanation import ReferenceContext

PROBE_ITERATIONS = 500

ReadHidden = Callable[[Sequence[Mapping[str, Any]], ReferenceContext, Sequence[int]], Any]


def fitted_probe(
    rows: Sequence[Mapping[str, Any]],
    read: list[list[Any]],
    context: ReferenceContext,
    layer: int,
    read_hidden: ReadHidden,
) -> dict[str, Any]:
    """The probe of one relation's train ``rows`` at ``layer``, from the cache or fitted now.

    ``read`` memoizes the rows' hidden states at every layer the subject has (read with
    ``read_hidden``), so that the first probe missing from the cache reads them once for
    all the others.
    """
    from ground_truth.artifacts import cached_artifact, content_digest

    def fit() -> dict[str, Any]:
        import numpy as np
        import torch
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        if not read:
            read.extend(read_hidden(rows, context, list(range(context.backend.n_layers))))
        x = np.stack([h[layer].numpy() for h in read])
        # one BLAS thread: on a busy machine the fit's tiny matrix products otherwise
        # wait on spinning threads (40x slower measured on 2 shared cores, 91 s vs 2 s)
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")  # few examples per object: a weak baseline
            probe = LogisticRegression(max_iter=PROBE_ITERATIONS).fit(
                x, [r["object"] for r in rows]
            )
        return {
            "classes": [str(c) for c in probe.classes_],
            "coef": torch.from_numpy(probe.coef_),
            "intercept": torch.from_numpy(probe.intercept_),
        }

    content = [
        [
            r["question_id"],
            r["prompt_source"],
            r["subject"],
            r["object"],
            r.get("mention"),
            r.get("source_end"),
        ]
        for r in rows
    ]
    key = {
        "subject": context.subject.fingerprint,
        "backend": getattr(context.backend, "name", type(context.backend).__name__),
        "layer": layer,
        "train": content_digest(content),
        "max_iter": PROBE_ITERATIONS,
    }
    return cached_artifact("attribute-probe", key, fit)


def predict(probe: Mapping[str, Any], x: Any) -> Any:
    """The labels a stored probe predicts for the rows of ``x`` (sklearn's own ``predict``)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=PROBE_ITERATIONS)
    model.classes_ = np.array(probe["classes"])
    model.coef_ = probe["coef"].numpy()
    model.intercept_ = probe["intercept"].numpy()
    model.n_features_in_ = model.coef_.shape[1]
    return model.predict(x)
