"""K-Means on the distinct rows of the data, weighted by their counts.

Lloyd's algorithm on the distinct rows weighted by how often each occurs has
the same objective, the same iterations and the same fixed points as Lloyd on
every sample; images repeat colors a lot, so this is where the speed comes
from. Assignment goes through the distinct rows too: each distinct row is
matched to its nearest codeword once, and samples look their code up.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin_min

# Rows of small unsigned integers are packed into one integer key so that
# finding the distinct rows is a 1-D problem.
_PACKABLE_MAX_FEATURES = 4


def unique_rows(X, sample_weight=None):
    """Distinct rows of ``X``, the index of each sample's row, and the weights.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None

    Returns
    -------
    rows : ndarray of shape (n_distinct, n_features), same dtype as ``X``
    inverse : ndarray of shape (n_samples,)
        ``rows[inverse] == X``.
    weights : ndarray of shape (n_distinct,), float64
        Summed sample weights (counts when ``sample_weight`` is None).
    """
    if X.dtype == np.uint8 and X.shape[1] <= _PACKABLE_MAX_FEATURES:
        keys = _pack_uint8(X)
        keys_u, inverse = np.unique(keys, return_inverse=True)
        rows = _unpack_uint8(keys_u, X.shape[1])
    else:
        rows, inverse = np.unique(X, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    weights = np.bincount(inverse, weights=sample_weight, minlength=len(rows))
    return rows, inverse, weights.astype(np.float64, copy=False)


def _pack_uint8(X):
    keys = np.zeros(X.shape[0], dtype=np.uint32)
    for j in range(X.shape[1]):
        keys <<= np.uint32(8)
        keys |= X[:, j]
    return keys


def _unpack_uint8(keys, n_features):
    rows = np.empty((keys.shape[0], n_features), dtype=np.uint8)
    for j in range(n_features):
        shift = np.uint32(8 * (n_features - 1 - j))
        rows[:, j] = (keys >> shift) & np.uint32(0xFF)
    return rows


def fit_codebook(
    X,
    sample_weight,
    n_clusters,
    *,
    init,
    n_init,
    max_iter,
    tol,
    random_state,
):
    """Fit a codebook of at most ``n_clusters`` rows to ``X``.

    Returns
    -------
    codebook : ndarray of shape (n_codes, n_features), float64
        ``n_codes == n_clusters`` unless ``X`` has fewer distinct rows, in
        which case the codebook is exactly those rows.
    inertia : float
        Weighted sum of squared distances of the samples to their codeword.
    n_iter : int
        Lloyd iterations run (0 when the codebook is the distinct rows).
    """
    rows, _, weights = unique_rows(X, sample_weight)
    keep = weights > 0
    rows, weights = rows[keep], weights[keep]
    if len(rows) <= n_clusters:
        return rows.astype(np.float64), 0.0, 0
    km = KMeans(
        n_clusters=n_clusters,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        algorithm="lloyd",
    )
    km.fit(rows.astype(np.float64), sample_weight=weights)
    return km.cluster_centers_, float(km.inertia_), int(km.n_iter_)


def assign(X, codebook):
    """Index of the nearest codebook row for each row of ``X``.

    Returns
    -------
    codes : ndarray of shape (n_samples,), intp
    sq_dist : ndarray of shape (n_samples,), float64
        Squared Euclidean distance to that row.
    """
    if X.shape[0] == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0)
    rows, inverse, _ = unique_rows(X)
    codes, dist = pairwise_distances_argmin_min(
        rows.astype(np.float64), codebook, metric="sqeuclidean"
    )
    return codes[inverse], dist[inverse]
