"""Greedy choices of tiny random models, compared only where they are made with a margin.

The tiny models of these tests have random weights, so their logits come close to a tie
here and there. Two exact computations of the same float32 logits in another order (another
backend, batch or padding, a KV cache, another thread count or CPU) differ by about 1e-7
here. A greedy choice whose top-1 vs top-2 margin is below that difference can go either
way, and a generation differs from there on: a comparison of such a choice fails or passes
with the machine. So a test that compares choices also checks the numbers behind them:

* every logit row the compared computation made is within `NUMERIC_ERROR` of a row of the
  reference computation (`assert_rows_match`), and
* every choice compared was made with a margin above `MARGIN` (`assert_margins`).

`MARGIN` is ten times `NUMERIC_ERROR`, so a choice that passes both cannot flip on any
machine whose numbers stay within the stated error: when the choices differ, that is a
real disagreement. The margins are a property of the model and its prompts (the same on
every machine up to the numeric error), so a prompt that comes too close to a tie fails the
margin check everywhere, with the margin in the message, rather than only on some CPUs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

# float32 logits of the same tokens computed in another order differ by up to 1.8e-7 here
NUMERIC_ERROR = 1e-6
# the smallest top-1 vs top-2 logit margin of a greedy choice that a test compares
MARGIN = 10 * NUMERIC_ERROR


def margins(logits: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 of each row (the last dimension)."""
    top = logits.double().topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def assert_margins(logits: torch.Tensor | list[torch.Tensor], what: str) -> float:
    """Every row's greedy choice wins by more than `MARGIN`; returns the smallest margin.

    ``logits``: rows (the last dimension: the candidates of one choice), or a list of them.
    """
    found = [
        margins(rows).min()
        for rows in (logits if isinstance(logits, list) else [logits])
        if rows.numel()
    ]
    if not found:
        return float("inf")
    smallest = float(min(found))
    assert smallest > MARGIN, (
        f"{what}: a greedy choice wins by {smallest:.3g} only, not more than {MARGIN:g}; "
        "another computation order may choose otherwise (use other prompts or tokens)"
    )
    return smallest


def assert_rows_match(rows: torch.Tensor, reference: torch.Tensor, what: str) -> float:
    """Every row has a reference row within `NUMERIC_ERROR` (largest difference); returns
    the largest such distance. Rows are matched by content, so the two computations may
    batch, order and split their passes differently."""
    if rows.numel() == 0:
        return 0.0
    assert reference.numel(), f"{what}: no reference rows"
    rows, reference = rows.double(), reference.double()
    worst = 0.0
    for chunk in rows.split(16):
        distance = (chunk[:, None, :] - reference[None, :, :]).abs().amax(-1).min(-1).values
        worst = max(worst, float(distance.max()))
    assert worst <= NUMERIC_ERROR, (
        f"{what}: logits differ from the reference's by {worst:.3g} > {NUMERIC_ERROR:g}"
    )
    return worst


class LogitRecorder:
    """Every logit row a batched backend's passes compute for a real (unpadded) token.

    The last column of every pass, and every unpadded column of a pass that returns more
    (``score_from``: the columns of the scored tokens); ``generated`` holds the rows computed inside ``generate``
    (whose argmaxes are the greedy tokens), ``rows`` all of them.
    """

    def __init__(self) -> None:
        self._rows: list[torch.Tensor] = []
        self._generated: list[torch.Tensor] = []
        self._in_generate = False

    @property
    def rows(self) -> torch.Tensor:
        return torch.cat(self._rows) if self._rows else torch.empty(0, 0)

    @property
    def generated(self) -> torch.Tensor:
        return torch.cat(self._generated) if self._generated else torch.empty(0, 0)

    @contextlib.contextmanager
    def attach(self, backend: Any) -> Iterator[LogitRecorder]:
        """Record ``backend``'s passes inside the block."""
        run, generate = backend.run, backend.generate

        def recorded_run(ids, mask, plan, **kwargs):
            logits, past = run(ids, mask, plan, **kwargs)
            if kwargs.get("all_logits"):  # every column, or the last n (``score_from``)
                real = mask[:, -logits.shape[1] :].bool()
                kept = logits[real]
            else:
                kept = logits[:, -1]
            kept = kept.detach().double().cpu()
            self._rows.append(kept)
            if self._in_generate:
                self._generated.append(kept)
            return logits, past

        def recorded_generate(*args, **kwargs):
            self._in_generate = True
            try:
                return generate(*args, **kwargs)
            finally:
                self._in_generate = False

        own = {
            name: backend.__dict__[name] for name in ("run", "generate") if name in vars(backend)
        }
        backend.run, backend.generate = recorded_run, recorded_generate
        try:
            yield self
        finally:
            del backend.run, backend.generate
            vars(backend).update(own)


def record(backend: Any) -> contextlib.AbstractContextManager[LogitRecorder]:
    """``with record(backend) as rows:`` the logits of the backend's passes in the block."""
    return LogitRecorder().attach(backend)
