"""k-means quantisation for MAUVE: a deterministic numpy Lloyd's algorithm and the faiss backend.

``kmeans_labels(x, k, backend=...)`` returns one cluster label per row of ``x (n, d)``.

- ``"numpy"`` (default, no extra dependency): k-means++ seeding (``np.random.default_rng(seed)``),
  Lloyd iterations in float64 until the labels stop changing or ``max_iter``; ``n_redo`` restarts,
  the lowest inertia (sum of squared distances) wins; an emptied cluster is re-seeded with the point
  farthest from its centroid. Labels = nearest final centroid.
- ``"faiss"``: exactly what ``mauve-text`` 0.4.0 does (``faiss.Kmeans(d, k, niter=max_iter,
  nredo=n_redo, seed=seed, update_index=True)`` on float32 data, labels from ``index.search``):
  with the same seed the labels are identical to mauve-text's. faiss samples its initial centroids
  at random and caps the training set at 256 points per centroid.

Both minimise the same objective; they can end in different local minima (see docs/metrics.md for
the measured difference in MAUVE).
"""

from __future__ import annotations

import numpy as np

BACKENDS = ("numpy", "faiss")


def sq_distances(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, k)`` between rows of ``x (n, d)`` and ``c (k, d)`` (float64, >= 0)."""
    d2 = (x * x).sum(1)[:, None] + (c * c).sum(1)[None, :] - 2.0 * x @ c.T
    return np.maximum(d2, 0.0)


def kmeans_pp_init(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): ``(k, d)`` initial centroids drawn from ``x``."""
    n = len(x)
    centers = np.empty((k, x.shape[1]))
    centers[0] = x[rng.integers(n)]
    closest = sq_distances(x, centers[:1])[:, 0]
    for j in range(1, k):
        total = closest.sum()
        idx = int(rng.choice(n, p=closest / total)) if total > 0 else int(rng.integers(n))
        centers[j] = x[idx]
        closest = np.minimum(closest, sq_distances(x, centers[j : j + 1])[:, 0])
    return centers


def lloyd(x: np.ndarray, centers: np.ndarray, max_iter: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd iterations from ``centers``; returns ``(labels (n,), centers (k, d), inertia)``."""
    k = len(centers)
    labels = np.full(len(x), -1)
    for _ in range(max(1, max_iter)):
        d2 = sq_distances(x, centers)
        new = d2.argmin(1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, x)
        own = d2[np.arange(len(x)), labels]
        for j in np.flatnonzero(counts == 0):  # re-seed an empty cluster with the worst-fitted point
            far = int(own.argmax())
            old = labels[far]
            if counts[old] <= 1:
                continue
            sums[old] -= x[far]
            counts[old] -= 1
            sums[j], counts[j], labels[far], own[far] = x[far], 1.0, j, 0.0
        filled = counts > 0
        centers = centers.copy()
        centers[filled] = sums[filled] / counts[filled, None]
    d2 = sq_distances(x, centers)
    labels = d2.argmin(1)
    return labels, centers, float(d2[np.arange(len(x)), labels].sum())


def kmeans_numpy(x: np.ndarray, k: int, n_redo: int = 5, max_iter: int = 500, seed: int = 0) -> np.ndarray:
    """Best-of-``n_redo`` k-means++ / Lloyd labels ``(n,)`` int64 (deterministic given ``seed``)."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray] | None = None
    for _ in range(max(1, n_redo)):
        labels, _, inertia = lloyd(x, kmeans_pp_init(x, k, rng), max_iter)
        if best is None or inertia < best[0]:
            best = (inertia, labels)
    assert best is not None
    return best[1].astype(np.int64)


def kmeans_faiss(x: np.ndarray, k: int, n_redo: int = 5, max_iter: int = 500, seed: int = 0) -> np.ndarray:
    """mauve-text's faiss k-means (float32) -> labels ``(n,)`` int64. ImportError without faiss-cpu."""
    import faiss

    data = np.ascontiguousarray(x, dtype=np.float32)
    km = faiss.Kmeans(data.shape[1], k, niter=max_iter, verbose=False, nredo=n_redo, update_index=True, seed=seed)
    km.train(data)
    _, labels = km.index.search(data, 1)
    return labels.reshape(-1).astype(np.int64)


def kmeans_labels(
    x: np.ndarray, k: int, backend: str = "numpy", n_redo: int = 5, max_iter: int = 500, seed: int = 0
) -> np.ndarray:
    """Cluster labels of the rows of ``x`` with ``k`` clusters using ``backend`` ("numpy" or "faiss")."""
    if k < 1 or k > len(x):
        raise ValueError(f"k-means needs 1 <= k <= n points, got k={k}, n={len(x)}")
    if backend == "numpy":
        return kmeans_numpy(x, k, n_redo, max_iter, seed)
    if backend == "faiss":
        return kmeans_faiss(x, k, n_redo, max_iter, seed)
    raise ValueError(f"kmeans backend must be one of {BACKENDS}, got {backend!r}")
