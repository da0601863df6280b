"""Ridge least squares and R^2 for the cross-model maps (`ground_truth.affine_map`).

Written out (a dozen lines of linear algebra) rather than taken from scikit-learn so the
fit runs in float64 on torch tensors with a ridge relative to the data's variance.
"""

from __future__ import annotations

import math

import torch


def solve_affine(
    x: torch.Tensor, y: torch.Tensor, ridge: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight ``[d_x, d_y]`` and bias ``[d_y]`` minimising ``|[x, 1] W - y|^2 + λ|W_x|^2``.

    The bias row is not penalised (solved on centred data, which is the same thing), and
    ``λ = ridge * trace(xcᵀxc) / d_x`` is relative to the mean variance of ``x``, so one
    ``ridge`` suits models whose activations differ in scale by orders of magnitude. In
    float64; returned as float32.
    """
    x64, y64 = x.double(), y.double()
    x_mean, y_mean = x64.mean(0), y64.mean(0)
    xc, yc = x64 - x_mean, y64 - y64.mean(0)
    gram = xc.T @ xc
    penalty = ridge * float(gram.diagonal().sum()) / max(gram.shape[0], 1)
    if penalty > 0:
        gram = gram + penalty * torch.eye(gram.shape[0], dtype=gram.dtype)
        weight = torch.linalg.solve(gram, xc.T @ yc)
    else:
        weight = torch.linalg.lstsq(xc, yc, driver="gelsd").solution
    bias = y_mean - x_mean @ weight
    return weight.float(), bias.float()


def r_squared(predicted: torch.Tensor, actual: torch.Tensor) -> float:
    """1 - SSE/SST per column of ``actual``, averaged over columns that vary (nan if none)."""
    predicted, actual = predicted.double(), actual.double()
    sse = ((actual - predicted) ** 2).sum(0)
    sst = ((actual - actual.mean(0)) ** 2).sum(0)
    varying = sst > 1e-12 * max(float(sst.max()), 1e-300)
    if not bool(varying.any()):
        return math.nan
    return float((1 - sse[varying] / sst[varying]).mean())
