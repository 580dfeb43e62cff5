from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.metrics.kad import (
    SCALE_FACTOR,
    gamma_from_bandwidth,
    kad_replicates,
    kernel_audio_distance,
    kernel_sums,
    median_pairwise_distance,
    mmd2_unbiased,
)


def direct_kad(x, y, bandwidth, kernel="gaussian", eps=1e-8):
    """O(n^2)-memory reference: full kernel matrices, diagonals removed, float64."""
    g = 1.0 / (2.0 * bandwidth**2 + eps)

    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return {"gaussian": np.exp(-g * d2), "iq": 1 / (1 + g * d2), "imq": 1 / np.sqrt(1 + g * d2)}[kernel]

    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    np.fill_diagonal(kxx, 0.0)
    np.fill_diagonal(kyy, 0.0)
    return 100.0 * (kxx.sum() / (m * (m - 1)) + kyy.sum() / (n * (n - 1)) - 2 * k(x, y).mean())


def kadtk_formula(x, y, bandwidth, kernel="gaussian", precision=torch.float32, eps=1e-8):
    """kadtk ``calc_kernel_audio_distance`` (no stats cache), transcribed: x @ x.T expansion, torch float32."""
    x = torch.as_tensor(x).to(precision)
    y = torch.as_tensor(y).to(precision)
    m, n = x.shape[0], y.shape[0]
    gamma = 1 / (2 * bandwidth**2 + eps)
    kern = {
        "gaussian": lambda a: torch.exp(-gamma * a),
        "iq": lambda a: 1 / (1 + gamma * a),
        "imq": lambda a: 1 / torch.sqrt(1 + gamma * a),
    }[kernel]
    xx = x @ x.T
    x_sq = torch.diagonal(xx)
    k_xx = kern(x_sq.unsqueeze(1) + x_sq.unsqueeze(0) - 2 * xx)
    k_xx = k_xx - torch.diag(torch.diagonal(k_xx))
    yy = y @ y.T
    y_sq = torch.diagonal(yy)
    k_yy = kern(y_sq.unsqueeze(1) + y_sq.unsqueeze(0) - 2 * yy)
    k_yy = k_yy - torch.diag(torch.diagonal(k_yy))
    k_xy = kern(x_sq.unsqueeze(1) + y_sq.unsqueeze(0) - 2 * x @ y.T)
    return float((k_xx.sum() / (m * (m - 1)) + k_yy.sum() / (n * (n - 1)) - 2 * k_xy.mean()) * 100)


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(230, 16))
    y = rng.normal(size=(171, 16)) * 1.1 + 0.15
    return x, y


@pytest.mark.parametrize("kernel", ["gaussian", "iq", "imq"])
def test_blockwise_equals_direct(sets, kernel):
    x, y = sets
    bw = median_pairwise_distance(x)
    want = direct_kad(x, y, bw, kernel)
    got = kernel_audio_distance(x, y, bw, kernel, block=37, device="cpu")
    assert got == pytest.approx(want, rel=1e-10)
    assert mmd2_unbiased(x, y, bw, kernel, block=1000, device="cpu") * SCALE_FACTOR == pytest.approx(want, rel=1e-10)


def test_matches_kadtk_formula(sets):
    x, y = sets
    bw = median_pairwise_distance(x)
    got32 = kernel_audio_distance(x, y, bw, block=64, device="cpu", dtype="float32")
    assert got32 == pytest.approx(kadtk_formula(x, y, bw), rel=1e-3)
    got64 = kernel_audio_distance(x, y, bw, block=64, device="cpu")
    assert got64 == pytest.approx(kadtk_formula(x, y, bw, precision=torch.float64), rel=1e-9)


def test_median_heuristic_matches_torch_median_of_pdist(sets):
    x, _ = sets
    want = torch.median(torch.pdist(torch.as_tensor(x))).item()  # lower median, as kadtk
    assert median_pairwise_distance(x, block=50) == pytest.approx(want, rel=1e-12)
    # subsampled pairs: deterministic and close to the exact median
    a = median_pairwise_distance(x, max_pairs=5000, seed=1)
    assert a == median_pairwise_distance(x, max_pairs=5000, seed=1)
    assert a == pytest.approx(want, rel=0.03)


def test_hand_computed_case():
    # 1-D, bandwidth 1 (eps=0): x = {0, 1}, y = {0, 2}
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])
    k = lambda d: math.exp(-(d**2) / 2)  # noqa: E731
    want = 100 * (k(1) + k(2) - 2 * (k(0) + k(2) + k(1) + k(1)) / 4)
    assert kernel_audio_distance(x, y, 1.0, eps=0.0, device="cpu") == pytest.approx(want, rel=1e-12)


def test_same_distribution_is_near_zero_and_unbiased():
    rng = np.random.default_rng(1)
    vals = [
        kernel_audio_distance(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)), 2.0, device="cpu") for _ in range(8)
    ]
    shifted = kernel_audio_distance(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 1.0, 2.0, device="cpu")
    assert abs(np.mean(vals)) < 0.2 * shifted and min(vals) < 0 < max(vals) + 1e-9


def test_replicates_equal_expanded_sets_without_copy_pairs(sets):
    x, y = sets
    rng = np.random.default_rng(2)
    w = rng.integers(0, 3, size=(5, len(y))).astype(float)
    bw = 3.0
    g = gamma_from_bandwidth(bw)
    reps = kad_replicates(x, y, w, bw, block=40, device="cpu")
    for b in range(5):
        origin = np.repeat(np.arange(len(y)), w[b].astype(int))
        yy = y[origin]
        kyy = np.exp(-g * ((yy[:, None, :] - yy[None, :, :]) ** 2).sum(-1))
        distinct = origin[:, None] != origin[None, :]  # pairs of copies of one clip are left out
        kxx = np.exp(-g * ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(kxx, 0.0)
        kxy = np.exp(-g * ((x[:, None, :] - yy[None, :, :]) ** 2).sum(-1))
        m = len(x)
        want = 100 * (kxx.sum() / (m * (m - 1)) + kyy[distinct].mean() - 2 * kxy.mean())
        assert reps[b] == pytest.approx(want, rel=1e-9)
    # weights in {0, 1}: a plain subset
    sub = (rng.random(len(y)) < 0.5).astype(float)
    assert kad_replicates(x, y, sub[None], bw, device="cpu")[0] == pytest.approx(
        direct_kad(x, y[sub > 0], bw), rel=1e-10
    )
    full = kernel_sums(y, None, g, block=25, device="cpu")[0]
    assert full == pytest.approx(kernel_sums(y, y, g, block=1000, device="cpu")[0], rel=1e-12)


def test_requires_two_samples():
    with pytest.raises(ValueError):
        mmd2_unbiased(np.zeros((1, 3)), np.zeros((5, 3)), 1.0, device="cpu")
    with pytest.raises(ValueError):
        median_pairwise_distance(np.zeros((1, 3)))
