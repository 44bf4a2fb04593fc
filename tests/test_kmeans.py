"""Tests of the exact K-Means engine: fixed points, determinism, equivalences."""

import tracemalloc
import warnings
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import load_sample_image
from threadpoolctl import threadpool_limits

from skvq import VectorQuantizer
from skvq._engine import _colors, _grid, colors, grid, lloyd, seeding, sweep, threads
from skvq._engine import kmeans as _kmeans


def brute_sq_distances(X, codebook):
    X = np.asarray(X, dtype=np.float64)
    return ((X[:, None, :] - codebook[None, :, :]) ** 2).sum(axis=2)


def assert_lloyd_fixed_point(X, codebook, codes):
    """Each sample is at a nearest codeword, each codeword the mean of its samples.

    "To rounding": distances may tie within 1e-9 (relative to the largest
    squared distance), and means agree to 1e-9 of the data range.
    """
    X = np.asarray(X, dtype=np.float64)
    sq = brute_sq_distances(X, codebook)
    own = sq[np.arange(len(X)), codes]
    np.testing.assert_array_less(own - sq.min(axis=1), 1e-9 * sq.max() + 1e-12)
    counts = np.bincount(codes, minlength=len(codebook))
    assert counts.min() > 0, "every codeword has samples"
    means = np.stack(
        [np.bincount(codes, weights=X[:, j]) / counts for j in range(X.shape[1])],
        axis=1,
    )
    np.testing.assert_allclose(codebook, means, rtol=0, atol=1e-9 * np.ptp(X))


@pytest.fixture(scope="module")
def flower():
    return load_sample_image("flower.jpg")


@pytest.mark.parametrize("n_clusters", [2, 7, 32, 128])
@pytest.mark.parametrize("photo", ["china", "flower"])
def test_fit_is_a_lloyd_fixed_point_on_photo_crops(photo, n_clusters, china, flower):
    image = {"china": china, "flower": flower}[photo]
    crop = image[150:230, 200:320]  # 9,600 pixels, thousands of distinct colors
    pixels = crop.reshape(-1, 3)
    vq = VectorQuantizer(n_clusters, random_state=0).fit(pixels)  # tol=0
    assert vq.n_codes_ == n_clusters
    codes = vq.transform(pixels)[:, 0].astype(np.intp)
    assert_lloyd_fixed_point(pixels, vq.codebook_, codes)
    sq = brute_sq_distances(pixels, vq.codebook_)
    assert vq.inertia_ == pytest.approx(sq[np.arange(len(pixels)), codes].sum())


def test_fixed_point_when_the_coarse_seeding_is_used(china):
    # Enough distinct colors that the seeding runs on the coarse histogram.
    pixels = china[100:300, 100:400].reshape(-1, 3)
    rows, _ = colors.unique_rows(pixels)
    cells, _, _ = grid.cell_means(
        rows, np.ones(len(rows)), grid.Coordinates.of(rows), grid.GRID_BITS
    )
    assert len(rows) >= _kmeans.MIN_COARSENING * len(cells)
    vq = VectorQuantizer(16, random_state=0).fit(pixels)
    codes = vq.transform(pixels)[:, 0].astype(np.intp)
    assert_lloyd_fixed_point(pixels, vq.codebook_, codes)


def test_positive_tol_stops_earlier(china):
    pixels = china[100:300, 100:400].reshape(-1, 3)
    exact = VectorQuantizer(16, random_state=0).fit(pixels)
    early = VectorQuantizer(16, tol=1e-2, random_state=0).fit(pixels)
    assert early.n_iter_ < exact.n_iter_


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_fixed_point_grayscale_and_alpha(small_photo, channels):
    if channels == 4:
        alpha = np.add.outer(np.arange(40), np.arange(60)).astype(np.uint8)
        pixels = np.dstack([small_photo, alpha]).reshape(-1, 4)
    else:
        pixels = small_photo[:, :, :channels].reshape(-1, channels)
    vq = VectorQuantizer(8, tol=0, random_state=0).fit(pixels)
    codes = vq.transform(pixels)[:, 0].astype(np.intp)
    assert_lloyd_fixed_point(pixels, vq.codebook_, codes)


def test_same_random_state_same_codebook_and_codes(china):
    pixels = china[::2, ::2].reshape(-1, 3)
    fits = [VectorQuantizer(32, random_state=7).fit(pixels) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].codebook_, fits[1].codebook_)
    np.testing.assert_array_equal(fits[0].transform(pixels), fits[1].transform(pixels))
    other = VectorQuantizer(32, random_state=8).fit(pixels)
    assert not np.array_equal(fits[0].codebook_, other.codebook_)


@pytest.mark.parametrize("crop", [None, (slice(100, 300), slice(100, 400))])
def test_uint8_and_float_inputs_agree(small_photo, china, crop):
    # The larger crop is fitted through the color histograms.
    pixels = (small_photo if crop is None else china[crop]).reshape(-1, 3)
    as_uint8 = VectorQuantizer(16, tol=0, random_state=0).fit(pixels)
    as_float = VectorQuantizer(16, tol=0, random_state=0).fit(pixels.astype(float))
    np.testing.assert_allclose(as_uint8.codebook_, as_float.codebook_, atol=1e-9)
    np.testing.assert_array_equal(
        as_uint8.transform(pixels), as_float.transform(pixels.astype(float))
    )


def test_weights_are_repeats(small_photo):
    # From the same start (seeds are drawn over the samples given, in their
    # order, so pixels and their histogram draw differently).
    pixels = small_photo.reshape(-1, 3)
    rows, counts = colors.unique_rows(pixels)
    start = rows[::7][:8].astype(float)
    repeated = VectorQuantizer(8, init=start).fit(pixels)
    weighted = VectorQuantizer(8, init=start).fit(rows, sample_weight=counts)
    np.testing.assert_allclose(repeated.codebook_, weighted.codebook_)
    assert repeated.inertia_ == pytest.approx(weighted.inertia_)


def test_fewer_distinct_rows_than_clusters_gives_those_rows():
    X = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 0]], dtype=np.uint8)
    codebook, inertia, n_iter = _kmeans.fit_codebook(
        X, None, 4, init="k-means++", n_init=1, max_iter=10, tol=0, random_state=0
    )
    np.testing.assert_array_equal(codebook, [[0, 0, 0], [255, 0, 0]])
    assert (inertia, n_iter) == (0.0, 0)


uint8_rows = st.integers(1, 4).flatmap(
    lambda d: arrays(
        np.uint8,
        st.tuples(st.integers(1, 300), st.just(d)),
        elements=st.integers(0, 255) | st.sampled_from([0, 17, 128, 255]),
    )
)


def counting_from(min_samples):
    """Distinct colors by dense counting from ``min_samples`` samples on."""
    return mock.patch.object(colors, "DENSE_COUNT_MIN_SAMPLES", min_samples)


@pytest.mark.parametrize("dense_from", [0, 2**22])
@given(X=uint8_rows, data=st.data())
def test_unique_rows_counts_every_sample(dense_from, X, data):
    weights = data.draw(
        st.none() | arrays(np.float64, len(X), elements=st.floats(0, 10))
    )
    with counting_from(dense_from):
        rows, summed = colors.unique_rows(X, weights)
    expected_rows, inverse = np.unique(X, axis=0, return_inverse=True)
    np.testing.assert_array_equal(rows, expected_rows)
    expected = np.bincount(inverse.reshape(-1), weights=weights)
    np.testing.assert_allclose(summed, expected)


@pytest.mark.parametrize("dense_from", [0, 2**22])
@given(X=uint8_rows, k=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_assign_finds_a_nearest_codeword(dense_from, X, k, seed):
    rng = np.random.default_rng(seed)
    codebook = rng.uniform(-20, 275, size=(k, X.shape[1]))
    for data in (X, X.astype(np.float64)):
        with counting_from(dense_from):
            codes, sq_dist = _kmeans.assign(data, codebook)
        sq = brute_sq_distances(X, codebook)
        np.testing.assert_allclose(sq_dist, sq.min(axis=1), rtol=1e-9, atol=1e-9)
        own = sq[np.arange(len(X)), codes]
        np.testing.assert_allclose(own, sq.min(axis=1), rtol=1e-9, atol=1e-9)


@given(seed=st.integers(0, 2**16), k=st.integers(1, 300))
def test_grid_search_matches_brute_force_on_many_colors(seed, k):
    rng = np.random.default_rng(seed)
    # Clustered colors, some exactly on codewords, as in photos.
    centers = rng.integers(0, 256, size=(k, 3)).astype(np.float64)
    X = np.clip(
        centers[rng.integers(0, k, 3000)] + rng.normal(0, 12, (3000, 3)), 0, 255
    ).astype(np.uint8)
    codes, sq_dist = _kmeans.assign(X, centers)
    sq = brute_sq_distances(X, centers)
    np.testing.assert_allclose(sq_dist, sq.min(axis=1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        sq[np.arange(len(X)), codes], sq.min(axis=1), rtol=1e-9, atol=1e-9
    )


@given(X=uint8_rows, k=st.integers(1, 6), seed=st.integers(0, 100))
def test_weighted_distinct_objective_is_the_full_objective(X, k, seed):
    codebook, inertia, _ = _kmeans.fit_codebook(
        X, None, k, init="k-means++", n_init=1, max_iter=50, tol=0, random_state=seed
    )
    codes, sq_dist = _kmeans.assign(X, codebook)
    assert inertia == pytest.approx(sq_dist.sum(), rel=1e-9, abs=1e-6)
    if len(codebook) == k and inertia > 0:
        assert_lloyd_fixed_point(X, codebook, codes.astype(np.intp))


def test_transform_of_a_large_image_uses_the_lookup_table(china):
    # More distinct keys than fit a dense table would be wrong for 4 channels.
    rgba = np.dstack([china, np.full(china.shape[:2], 200, np.uint8)])
    pixels = rgba.reshape(-1, 4)
    vq = VectorQuantizer(4, random_state=0).fit(pixels[::50])
    codes = vq.transform(pixels)[:, 0]
    sq = brute_sq_distances(pixels[::97], vq.codebook_)
    np.testing.assert_allclose(
        sq[np.arange(len(sq)), codes[::97]], sq.min(axis=1), rtol=1e-9
    )


def reference_lloyd(
    points, weights, centers, relaxation=1.0, max_iter=1000, reach=lloyd.REACH
):
    """Textbook weighted Lloyd with brute-force assignment, for reference.

    With ``relaxation > 1``, over-relaxed as ``lloyd.run`` documents:
    in the first ``max_iter // 2`` updates, a centroid whose way to its mean
    heads the way of its last move steps past the mean, until no point
    changes cluster; then plain updates land on a fixed point. The last
    moves are forgotten whenever a centroid gets farther than ``reach``
    from where it was when they were last forgotten.

    Returns the centroids, the number of updates and the assignment the
    last update was made from.
    """
    labels, overshot = None, False
    relaxed = max_iter // 2 if relaxation != 1 else 0
    last_move, anchor = np.zeros_like(centers), centers
    for n_iter in range(max_iter + 1):
        new = brute_sq_distances(points, centers).argmin(axis=1)
        if labels is not None and np.array_equal(new, labels):
            if not overshot:
                return centers, n_iter, labels  # a fixed point
            relaxed = n_iter
        if n_iter == max_iter:
            return centers, n_iter, labels
        labels = new
        counts = np.bincount(labels, weights=weights, minlength=len(centers))
        sums = np.stack(
            [
                np.bincount(
                    labels, weights=weights * points[:, j], minlength=len(centers)
                )
                for j in range(points.shape[1])
            ],
            axis=1,
        )
        filled = counts > 0
        means = sums[filled] / counts[filled, None]
        way = means - centers[filled]
        heading = (way * last_move[filled]).sum(axis=1) > 0
        step = np.where(heading, relaxation - 1 if n_iter < relaxed else 0.0, 0.0)
        overshot = bool(step.any())
        moved_to = means + step[:, None] * way
        last_move[filled] = moved_to - centers[filled]
        centers = centers.copy()
        centers[filled] = moved_to
        if (((centers - anchor) ** 2).sum(axis=1) > reach**2).any():
            last_move, anchor = np.zeros_like(centers), centers


@pytest.mark.parametrize("relaxation", [1.0, 1.8])
@pytest.mark.parametrize("reach", [0.25, 6.0])
@pytest.mark.parametrize("n_clusters", [5, 40])
def test_bounds_only_skip_work_same_iterations_as_reference_lloyd(
    china, reach, n_clusters, relaxation
):
    # A small reach makes many epochs (new candidate lists), a large one few.
    # Over-relaxed, each epoch restarts the momentum, and an update past the
    # means at the end of one is landed in the next.
    rows, weights = colors.unique_rows(china[200:260, 300:380].reshape(-1, 3))
    start = rows[np.random.default_rng(0).choice(len(rows), n_clusters, False)]
    assert_passes_of_reference_lloyd(rows, weights, start, relaxation, reach)


def assert_passes_of_reference_lloyd(rows, weights, start, relaxation, reach):
    """The engine's passes from ``start`` end where the reference's do, in as many."""
    start = start.astype(np.float64)
    with mock.patch.object(lloyd, "REACH", reach):
        centers, _, n_iter = lloyd.run(
            rows, weights, start, 1000, 0.0, relaxation=relaxation
        )
    expected, expected_iter, _ = reference_lloyd(
        rows.astype(np.float64), weights, start, relaxation, reach=reach
    )
    assert expected_iter < 1000
    np.testing.assert_allclose(centers, expected, rtol=0, atol=1e-9)
    assert n_iter == expected_iter


@pytest.mark.parametrize("max_iter", [1, 2, 3, 7])
def test_over_relaxed_lloyd_cut_short_ends_on_the_means(china, max_iter):
    # Stopped by max_iter, the centroids are those of the reference, and the
    # means of the clusters they were updated from: never a step past them.
    rows, weights = colors.unique_rows(china[:80, :120].reshape(-1, 3))
    points = rows.astype(np.float64)
    start = points[np.random.default_rng(1).choice(len(rows), 12, False)]
    centers, _, n_iter = lloyd.run(rows, weights, start, max_iter, 0.0, 1.8)
    expected, expected_iter, labels = reference_lloyd(
        points, weights, start, 1.8, max_iter
    )
    assert n_iter == expected_iter == max_iter
    np.testing.assert_allclose(centers, expected, rtol=0, atol=1e-9)
    counts = np.bincount(labels, weights=weights, minlength=len(start))
    sums = np.stack(
        [
            np.bincount(labels, weights=weights * points[:, j], minlength=len(start))
            for j in range(3)
        ],
        axis=1,
    )
    filled = counts > 0
    np.testing.assert_allclose(
        centers[filled], sums[filled] / counts[filled, None], rtol=0, atol=1e-9
    )


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 60),
    n_features=st.sampled_from([1, 3, 5]),
    weighted=st.booleans(),
)
def test_fixed_point_off_the_color_grid(seed, k, n_features, weighted):
    # Floats outside [0, 256) or more than 4 features: one bounding box.
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 300, size=(200, n_features)).round(1)
    weights = rng.uniform(0.1, 3, len(X)) if weighted else None
    codebook, inertia, _ = _kmeans.fit_codebook(
        X,
        weights,
        k,
        init="k-means++",
        n_init=1,
        max_iter=1000,
        tol=0,
        random_state=seed,
    )
    codes, sq_dist = _kmeans.assign(X, codebook)
    w = np.ones(len(X)) if weights is None else weights
    assert inertia == pytest.approx(w @ sq_dist, rel=1e-9)
    sq = brute_sq_distances(X, codebook)
    own = sq[np.arange(len(X)), codes]
    np.testing.assert_allclose(own, sq.min(axis=1), rtol=1e-9, atol=1e-9)
    counts = np.bincount(codes, weights=w, minlength=len(codebook))
    filled = counts > 0
    means = (
        np.stack(
            [
                np.bincount(codes, weights=w * X[:, j], minlength=len(codebook))
                for j in range(n_features)
            ],
            axis=1,
        )[filled]
        / counts[filled, None]
    )
    np.testing.assert_allclose(codebook[filled], means, rtol=0, atol=1e-9 * np.ptp(X))


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 80),
    slack=st.sampled_from([0.0, 3.0, 12.0]),
)
def test_candidate_lists_hold_every_nearest_centroid(seed, k, slack):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, size=(500, 3)).astype(np.uint8)
    centers = rng.uniform(-10, 265, size=(k, 3))
    cell_of_row, pyramid = grid.layout(rows)
    indptr, indices, floors, outside = grid.candidates(pyramid, centers, slack)
    # The centroids may then move by up to slack / 2 ...
    step = rng.normal(size=(k, 3))
    step *= rng.uniform(0, slack / 2, (k, 1)) / np.linalg.norm(step, axis=1)[:, None]
    moved = centers + step
    sq = brute_sq_distances(rows, moved)
    for i, cell in enumerate(cell_of_row):
        listed = indices[indptr[cell] : indptr[cell + 1]]
        cell_floors = floors[indptr[cell] : indptr[cell + 1]]
        # The list starts with its least floors in order (then index).
        least = np.lexsort((listed, cell_floors))[: _grid.HEAD_LENGTH]
        np.testing.assert_array_equal(listed[: len(least)], listed[least])
        assert np.all(cell_floors <= sq[i, listed] * (1 + 1e-9) + 1e-9)
        # ... and the nearest is still listed, the others at least outside - reach.
        assert sq[i, listed].min() <= sq[i].min() * (1 + 1e-9) + 1e-9
        unlisted = np.setdiff1d(np.arange(k), listed)
        assert np.all(np.sqrt(sq[i, unlisted]) >= outside[cell] - slack / 2 - 1e-9)
    labels, distance = _grid.nearest(
        rows.astype(np.float64),
        cell_of_row,
        *grid.candidates(pyramid, centers, 0.0)[:3],
        centers,
    )
    sq = brute_sq_distances(rows, centers)
    np.testing.assert_allclose(distance**2, sq.min(axis=1), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(labels, sq.argmin(axis=1))


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 40),
    weighted=st.booleans(),
    n_points=st.sampled_from([300, 1500]),
)
def test_seeding_picks_the_points_scikit_learn_picks(seed, k, weighted, n_points):
    # Same algorithm, same random draws in the same order: the same seeds
    # (from 1,000 points on, the trials run on threads).
    from sklearn.cluster import kmeans_plusplus
    from sklearn.utils import check_random_state

    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 255, size=(n_points, 3))
    weights = rng.uniform(0.5, 20, len(points)) if weighted else np.ones(len(points))
    ours = seeding.kmeans_plusplus(points, weights, k, check_random_state(seed))
    _, theirs = kmeans_plusplus(
        points, k, sample_weight=weights, random_state=check_random_state(seed)
    )
    np.testing.assert_array_equal(ours, theirs)


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(2, 120),
    n_features=st.integers(1, 4),
    data=st.sampled_from(["uniform", "integers", "skewed", "outliers"]),
    weighted=st.booleans(),
)
def test_grid_seeding_makes_the_choices_of_the_greedy_seeding(
    seed, k, n_features, data, weighted
):
    # The same draws pick the same points whether each trial looks at every
    # point or only at those of the cells it may bring nearer. On integers
    # (weights too) every sum is exact: the same points, ties between trials
    # included. Otherwise the sums are taken in another order: the two may
    # part only where the greedy seeding's choice was a tie to rounding.
    rng = np.random.default_rng(seed)
    n_points = int(rng.integers(k + 1, 3000))
    shape = (n_points, n_features)
    points = {
        "uniform": lambda: rng.uniform(0, 255, shape),
        "integers": lambda: rng.integers(0, 8, shape).astype(np.float64),
        "skewed": lambda: rng.lognormal(0, 2, shape) * [1, 100, 0.01, 7][:n_features],
        # Most of the potential goes with the first few centroids.
        "outliers": lambda: (
            np.where(rng.random(shape) < 0.01, 1e6, 1) * rng.random(shape)
        ),
    }[data]()
    if not weighted:
        weights = np.ones(n_points)
    elif data == "integers":
        weights = rng.integers(1, 20, n_points).astype(np.float64)
    else:
        weights = rng.uniform(0.5, 20, n_points)
    first = int(rng.integers(n_points))
    draws = rng.uniform(size=(k - 1, 2 + int(np.log(k))))
    greedy = seeding._seeding.greedy_kmeans_plusplus(points, weights, first, draws)
    on_grid = seeding._seeding.grid_kmeans_plusplus(
        points, weights, first, draws, *seeding._blocks_of_cells(points), n_threads=2
    )
    if data == "integers":
        np.testing.assert_array_equal(on_grid, greedy)
        return
    parted = np.flatnonzero(on_grid != greedy)
    if len(parted) == 0:
        return
    c = parted[0]
    closest = brute_sq_distances(points, points[greedy[:c]]).min(axis=1)
    potential = weights * closest
    cumulative = np.cumsum(potential)
    rounding = 1e-9 * cumulative[-1]

    def potential_with(i):
        return np.dot(
            weights, np.minimum(closest, brute_sq_distances(points, points[[i]])[:, 0])
        )

    # A draw on a boundary of the cumulative potential, or two trials as good.
    on_boundary = np.any(
        np.abs(cumulative[:, None] - draws[c - 1] * cumulative[-1]).min(axis=0)
        < rounding
    )
    as_good = abs(potential_with(greedy[c]) - potential_with(on_grid[c])) < rounding
    assert on_boundary or as_good


def test_large_seedings_run_on_the_grid_with_scikit_learns_choices(monkeypatch):
    from sklearn.cluster import kmeans_plusplus
    from sklearn.utils import check_random_state

    called = mock.Mock(wraps=seeding._seeding.grid_kmeans_plusplus)
    monkeypatch.setattr(seeding._seeding, "grid_kmeans_plusplus", called)
    points = np.random.default_rng(0).uniform(0, 255, size=(5000, 3))
    monkeypatch.setattr(seeding, "_GRID_MIN_WORK", 5000 * 63)
    ours = seeding.kmeans_plusplus(points, np.ones(5000), 32, check_random_state(1))
    assert called.call_count == 0, "below the thresholds: the greedy loop"
    ours = seeding.kmeans_plusplus(points, np.ones(5000), 65, check_random_state(1))
    assert called.call_count == 1
    _, theirs = kmeans_plusplus(points, 65, random_state=check_random_state(1))
    np.testing.assert_array_equal(ours, theirs)
    # Many clusters on few points: the grid too.
    few = points[:2000]
    ours = seeding.kmeans_plusplus(few, np.ones(2000), 64, check_random_state(1))
    assert called.call_count == 2
    _, theirs = kmeans_plusplus(few, 64, random_state=check_random_state(1))
    np.testing.assert_array_equal(ours, theirs)
    seeding.kmeans_plusplus(few, np.ones(2000), 63, check_random_state(1))
    assert called.call_count == 2, "fewer clusters: the greedy loop"


@given(
    n=st.integers(1, 300),
    seed=st.integers(0, 2**16),
    weights=st.sampled_from(["unit", "integers", "floats"]),
)
def test_first_sample_is_numpys_choice(n, seed, weights):
    from sklearn.utils import check_random_state

    rng = np.random.default_rng(seed)
    w = {
        "unit": lambda: np.ones(n),
        "integers": lambda: rng.integers(0, 4, n).astype(np.float64),
        "floats": lambda: rng.uniform(0, 3, n) * (rng.random(n) < 0.7),
    }[weights]()
    if w.sum() == 0:
        w[-1] = 1.0
    p = w / w.sum()
    expected = check_random_state(seed).choice(n, p=p)
    draw = check_random_state(seed).random_sample()
    assert seeding._seeding.first_sample(n, draw, p) == expected
    if weights == "unit":
        assert seeding._seeding.first_sample(n, draw) == expected


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(2, 90),
    n_colors=st.integers(2, 400),
    n_features=st.integers(1, 4),
    weighted=st.booleans(),
    on_grid=st.booleans(),
)
def test_seeding_over_samples_picks_the_samples_scikit_learn_picks(
    seed, k, n_colors, n_features, weighted, on_grid
):
    # Samples that repeat a few integer colors: drawn over the samples in
    # their order, the seeds are those of sklearn's kmeans_plusplus on the
    # samples themselves (every distance and cumulative sum is an exact
    # integer), whether the trials look at every color or through the grid.
    from sklearn.cluster import kmeans_plusplus
    from sklearn.utils import check_random_state

    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (n_colors, n_features))
    # Up to 6,000 samples: sums of blocks of 64 and of 4,096 samples.
    samples = palette[rng.integers(0, n_colors, int(rng.integers(5, 6000)))]
    rows, point_of_sample = np.unique(samples, axis=0, return_inverse=True)
    point_of_sample = point_of_sample.reshape(-1)
    k = min(k, len(rows) - 1)
    assume(k >= 1)
    sample_weight = (
        rng.integers(1, 6, len(samples)).astype(np.float64) if weighted else None
    )
    weights = np.bincount(point_of_sample, weights=sample_weight)
    with mock.patch.object(seeding, "_GRID_MIN_WORK", 0 if on_grid else 2**62):
        ours = seeding.kmeans_plusplus(
            rows.astype(np.float64),
            weights,
            k,
            check_random_state(seed),
            samples=(point_of_sample, sample_weight),
        )
    _, theirs = kmeans_plusplus(
        samples.astype(np.float64),
        k,
        sample_weight=sample_weight,
        random_state=check_random_state(seed),
    )
    np.testing.assert_array_equal(rows[ours], samples[theirs])


def test_seeding_over_a_whole_photo_picks_the_pixels_scikit_learn_picks(china):
    # 273,280 pixels: every level of the sums over samples (blocks of 64,
    # 4,096 and 262,144) is used.
    from sklearn.cluster import kmeans_plusplus
    from sklearn.utils import check_random_state

    pixels = china.reshape(-1, 3)
    rows, point_of_sample = np.unique(pixels, axis=0, return_inverse=True)
    for k in (12, 80):  # the greedy kernel, then the grid's
        ours = seeding.kmeans_plusplus(
            rows.astype(np.float64),
            np.bincount(point_of_sample.reshape(-1)).astype(np.float64),
            k,
            check_random_state(3),
            samples=(point_of_sample.reshape(-1), None),
        )
        _, theirs = kmeans_plusplus(pixels.astype(np.float64), k, random_state=3)
        np.testing.assert_array_equal(rows[ours], pixels[theirs])


def many_features(seed, data, n_features, n_rows=400):
    """Vectors past the grid's features: continuous (around 0, or far from
    it, where distances taken as products lose all precision unless the
    mean is taken off first), integers full of exact ties, or a few rows
    repeated many times."""
    rng = np.random.default_rng(seed)
    if data == "normal":
        return rng.normal(0, 3, (n_rows, n_features))
    if data == "far":
        return rng.normal(1e8, 3, (n_rows, n_features))
    if data == "integers":
        return rng.integers(0, 17, (n_rows, n_features)).astype(np.float64)
    return rng.normal(0, 1, (6, n_features))[rng.integers(0, 6, n_rows)]


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 40),
    n_features=st.integers(5, 70),
    data=st.sampled_from(["normal", "far", "integers", "repeated"]),
    weights=st.sampled_from(["none", "uniform", "some zero"]),
)
def test_seeding_by_products_picks_the_points_scikit_learn_picks(
    seed, k, n_features, data, weights
):
    # KMeans's own arithmetic (matrix products, then the same roundings):
    # the same seeds bit for bit, ties and repeated rows included.
    from sklearn.cluster import kmeans_plusplus
    from sklearn.utils import check_random_state

    X = many_features(seed, data, n_features)
    X -= X.mean(axis=0)
    rng = np.random.default_rng(seed + 1)
    w = {
        "none": np.ones(len(X)),
        "uniform": rng.uniform(0.5, 3, len(X)),
        "some zero": rng.integers(0, 3, len(X)).astype(np.float64),
    }[weights]
    assume(w.sum() > 0)
    ours = seeding.kmeans_plusplus_by_products(X, w, k, check_random_state(seed))
    _, theirs = kmeans_plusplus(X, k, sample_weight=w, random_state=seed)
    np.testing.assert_array_equal(ours, theirs)


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 24),
    n_features=st.integers(5, 40),
    data=st.sampled_from(["normal", "far", "integers", "repeated"]),
    weighted=st.booleans(),
)
def test_fit_of_many_features_is_kmeans_own_run(seed, k, n_features, data, weighted):
    # Past the grid's features the fit is KMeans's: its seeds (drawn by
    # skvq the way KMeans draws them) and its passes, to a fixed point. On
    # one thread (KMeans's sums then do not depend on the split), the same
    # codebook bit for bit.
    from sklearn.cluster import KMeans

    X = many_features(seed, data, n_features)
    assume(len(np.unique(X, axis=0)) > k)
    weights = np.random.default_rng(seed).uniform(0.5, 2, len(X)) if weighted else None
    with threadpool_limits(1):
        ours = VectorQuantizer(k, random_state=seed).fit(X, sample_weight=weights)
        theirs = KMeans(k, n_init=1, tol=0, random_state=seed).fit(
            X, sample_weight=weights
        )
    np.testing.assert_array_equal(ours.codebook_, theirs.cluster_centers_)
    assert (ours.inertia_, ours.n_iter_) == (theirs.inertia_, theirs.n_iter_)


@pytest.mark.parametrize("weighted", [False, True])
def test_fit_of_pixels_continues_kmeans_own_run(china, flower, weighted):
    # Pixels repeat colors: the fit is Lloyd from the seeds KMeans draws
    # for the same random_state (samples of no weight included), so it ends
    # at least as low as KMeans stops, up to where the two break exact ties
    # differently (the parity target: 0.02 dB, 0.46 % of inertia).
    from sklearn.cluster import KMeans, kmeans_plusplus

    rng = np.random.default_rng(7)
    for image, k, seed in [(china, 16, 42), (flower, 16, 0), (china, 64, 1)]:
        top, left = rng.integers(0, 200, 2)
        pixels = np.ascontiguousarray(image[top : top + 120, left : left + 160])
        pixels = pixels.reshape(-1, 3)
        sample_weight = (
            rng.integers(0, 4, len(pixels)).astype(float) if weighted else None
        )
        _, seeds = kmeans_plusplus(
            pixels.astype(float), k, sample_weight=sample_weight, random_state=seed
        )
        ours = VectorQuantizer(k, random_state=seed).fit(
            pixels, sample_weight=sample_weight
        )
        from_seeds = VectorQuantizer(k, init=pixels[seeds].astype(float)).fit(
            pixels, sample_weight=sample_weight
        )
        np.testing.assert_array_equal(ours.codebook_, from_seeds.codebook_)
        theirs = KMeans(k, random_state=seed).fit(
            pixels.astype(float), sample_weight=sample_weight
        )
        assert ours.inertia_ <= theirs.inertia_ * 10 ** (0.02 / 10)


def test_histograms_are_seeded_on_coarse_histograms(china):
    # Distinct rows given with their weights (what the image functions and
    # collection fits pass) take the coarse seeding: no draws over samples.
    pixels = china.reshape(-1, 3)
    rows, counts = np.unique(pixels, axis=0, return_counts=True)
    called = mock.Mock(wraps=seeding.kmeans_plusplus)
    with mock.patch.object(seeding, "kmeans_plusplus", called):
        VectorQuantizer(16, random_state=0).fit(rows, sample_weight=counts)
        assert all(c.args[5] is None for c in called.call_args_list)
        VectorQuantizer(16, random_state=0).fit(pixels)
        assert called.call_args_list[-1].args[5] is not None
        # Images of more pixels than the draws over samples take: coarse too.
        with mock.patch.object(_kmeans, "REPLAY_MAX_SAMPLES", len(pixels) - 1):
            VectorQuantizer(16, random_state=0).fit(pixels)
        assert called.call_args_list[-1].args[5] is None


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_best_of_n_init_seedings_is_kept(china, init):
    from sklearn.utils import check_random_state

    rows, weights = colors.unique_rows(china[::8, ::8].reshape(-1, 3))
    points = rows.astype(np.float64)
    # The seedings draw, one after the other, from one random state.
    random_state = check_random_state(3)
    inertias = []
    for _ in range(4):
        if init == "k-means++":
            chosen = seeding.kmeans_plusplus(points, weights, 12, random_state)
        else:
            chosen = random_state.choice(
                len(points), 12, replace=False, p=weights / weights.sum()
            )
        inertias.append(lloyd.run(rows, weights, points[chosen], 300, 0.0)[1])
    assert len(set(inertias)) > 1, "the seedings differ"
    centers = seeding.seed(
        points,
        weights,
        12,
        init=init,
        n_init=4,
        max_iter=300,
        tol=0.0,
        random_state=3,
    )
    best = lloyd.run(rows, weights, centers, 300, 0.0)[1]
    assert best == pytest.approx(min(inertias))


def test_random_init_reaches_a_fixed_point_reproducibly(china):
    pixels = china[100:200, 100:300].reshape(-1, 3)
    fits = [
        VectorQuantizer(10, init="random", random_state=5).fit(pixels) for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].codebook_, fits[1].codebook_)
    codes = fits[0].transform(pixels)[:, 0].astype(np.intp)
    assert_lloyd_fixed_point(pixels, fits[0].codebook_, codes)
    # "auto" is ten random seedings, as in scikit-learn's KMeans.
    ten = VectorQuantizer(10, init="random", n_init=10, random_state=5).fit(pixels)
    np.testing.assert_array_equal(fits[0].codebook_, ten.codebook_)


def test_threads_do_not_change_the_result(china, monkeypatch):
    from threadpoolctl import threadpool_limits

    # Threads even for a small image (normally only from 20,000 colors on).
    monkeypatch.setattr(threads, "LLOYD_ROWS", 0)
    pixels = china[::2, ::2].reshape(-1, 3)
    fits = []
    for n_threads in (1, 2, 3):
        with threadpool_limits(n_threads):
            fits.append(VectorQuantizer(48, random_state=0).fit(pixels))
    for fit in fits[1:]:
        np.testing.assert_array_equal(fit.codebook_, fits[0].codebook_)
        assert fit.n_iter_ == fits[0].n_iter_


def test_candidate_lists_of_many_boxes_on_threads(china):
    from threadpoolctl import threadpool_limits

    # Thousands of cells: the lists are made in chunks on threads.
    rows, _ = colors.unique_rows(china.reshape(-1, 3))
    cell_of_row, pyramid = grid.layout(rows)
    (cell_lo, _), _ = pyramid[0]
    assert len(cell_lo) >= 2000
    centers = np.random.default_rng(0).uniform(0, 255, size=(64, 3))
    lists = []
    for n_threads in (1, 2):
        with threadpool_limits(n_threads):
            lists.append(grid.candidates(pyramid, centers, 12.0))
    for serial, threaded in zip(*lists, strict=True):
        np.testing.assert_array_equal(serial, threaded)
    indptr, indices, _, _ = lists[1]
    sample = np.arange(0, len(rows), 37)
    nearest = brute_sq_distances(rows[sample], centers).argmin(axis=1)
    for i, j in zip(sample, nearest, strict=True):
        cell = cell_of_row[i]
        assert j in indices[indptr[cell] : indptr[cell + 1]]


@pytest.mark.parametrize("n_colors", [1000, 2**20 + 5])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_colors_are_looked_up_by_their_key(n_colors, n_threads):
    rows = np.random.default_rng(0).integers(0, 256, (n_colors, 3), dtype=np.uint8)
    table = np.arange(2**24, dtype=np.uint32) * 7
    keys = colors.pack(rows)
    found = _colors.look_up_colors(rows, table, n_threads)
    np.testing.assert_array_equal(found, table[keys])


def test_distinct_colors_of_many_pixels_on_threads():
    # Both passes of the counting run on threads.
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (2**20 + 7, 3), dtype=np.uint8)
    X[::3, 0] = 17  # a crowded part
    keys = np.sort(colors.pack(X))
    starts = colors.run_starts(keys)
    for n_threads in (1, 2):
        distinct, counts = _colors.distinct_colors(X, n_threads)
        np.testing.assert_array_equal(distinct, keys[starts])
        np.testing.assert_array_equal(counts, np.diff(starts, append=len(keys)))


@given(
    seed=st.integers(0, 2**16),
    n_rows=st.integers(0, 300),
    n_groups=st.integers(1, 20),
    n_features=st.integers(1, 4),
    as_uint8=st.booleans(),
)
def test_group_sums_are_the_weighted_sums_of_each_group(
    seed, n_rows, n_groups, n_features, as_uint8
):
    rng = np.random.default_rng(seed)
    rows = rng.uniform(0, 256, size=(n_rows, n_features))
    if as_uint8:
        rows = rows.astype(np.uint8)
    weights = rng.uniform(0.5, 3, size=n_rows)
    groups = rng.integers(0, n_groups, size=n_rows).astype(np.intp)
    sums, totals = _colors.group_sums(rows, weights, groups, n_groups)
    expected = np.zeros((n_groups, n_features))
    np.add.at(expected, groups, weights[:, None] * rows)
    np.testing.assert_allclose(sums, expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        totals, np.bincount(groups, weights=weights, minlength=n_groups), rtol=1e-12
    )


@given(
    X=st.integers(1, 4).flatmap(
        lambda d: arrays(
            np.float64,
            st.tuples(st.integers(0, 30), st.just(d)),
            elements=st.integers(0, 255).map(float)
            | st.sampled_from([-1.0, 0.5, 255.5, 256.0, np.nan, np.inf]),
        )
    )
)
def test_float_rows_take_the_uint8_path_exactly_when_nothing_is_lost(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no invalid cast on the way
        converted = colors.as_uint8_if_exact(X)
    exact = len(X) > 0 and bool(
        np.isin(X, np.arange(256)).all()  # integers 0..255 only
    )
    assert (converted.dtype == np.uint8) == exact
    np.testing.assert_array_equal(converted, X)


# -- Exactness: every assignment that of a brute-force search, ties included ----


def exact_sq_distances(X, codebook):
    """Squared distances summed feature by feature, as the engine sums them
    (the same roundings: exact ties stay exact ties)."""
    X = np.asarray(X, dtype=np.float64)
    sq = np.zeros((len(X), len(codebook)))
    for f in range(X.shape[1]):
        sq = sq + (X[:, None, f] - codebook[None, :, f]) ** 2
    return sq


def brute_force_codes(X, codebook):
    """The nearest codeword of each sample, the lowest index on ties."""
    return exact_sq_distances(X, codebook).argmin(axis=1)


def test_search_takes_the_lowest_index_of_three_tied_candidates():
    # Three centroids 65 away from the first point, listed 2, 1, 0 in its
    # box's candidate list (the farther outside the box [64, 127]**2, the
    # later).
    rows = np.array([[100, 100], [64, 64], [127, 127]], dtype=np.uint8)
    centers = np.array([[165.0, 100], [163, 116], [160, 125]])
    assert np.all(exact_sq_distances(rows[:1], centers) == 65**2)
    cell_of_row, pyramid = grid.layout(rows)
    indptr, indices, floors, _ = grid.candidates(pyramid, centers, 0.0)
    assert list(indices[indptr[cell_of_row[0]] : indptr[cell_of_row[0] + 1]]) == [
        2,
        1,
        0,
    ]
    labels, distance = _grid.nearest(
        rows.astype(np.float64), cell_of_row, indptr, indices, floors, centers
    )
    assert labels[0] == 0
    assert distance[0] == 65


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 40),
    n_features=st.integers(1, 4),
    spread=st.sampled_from([3, 12, 60]),
    slack=st.sampled_from([0.0, 5.0]),
)
def test_search_finds_the_lowest_nearest_index_and_three_least_distances(
    seed, k, n_features, spread, slack
):
    # Integer rows and centroids near each other: many exact ties, and
    # centroids listed in every order.
    rng = np.random.default_rng(seed)
    rows = rng.integers(100, 100 + spread, size=(400, n_features)).astype(np.uint8)
    centers = rng.integers(100 - spread, 100 + 2 * spread, size=(k, n_features))
    centers = centers[rng.integers(0, k, k)].astype(np.float64)  # duplicates too
    cell_of_row, pyramid = grid.layout(rows)
    indptr, indices, floors, _ = grid.candidates(pyramid, centers, slack)
    labels, distance, three = _grid.nearest(
        rows.astype(np.float64),
        cell_of_row,
        indptr,
        indices,
        floors,
        centers,
        return_three=True,
    )
    sq = exact_sq_distances(rows, centers)
    np.testing.assert_array_equal(labels, sq.argmin(axis=1))
    np.testing.assert_array_equal(distance, np.sqrt(sq.min(axis=1)))
    for i, cell in enumerate(cell_of_row):
        listed = np.sort(sq[i, indices[indptr[cell] : indptr[cell + 1]]])
        expected = np.concatenate([listed, [np.inf] * 3])[:3]
        np.testing.assert_array_equal(three[i], expected)


# Crops of the sample photos: origin, size (pixels of the crop as rows).
PHOTO_CROPS = {
    "photo": st.sampled_from(["china", "flower"]),
    "top": st.integers(0, 400),
    "left": st.integers(0, 600),
    "size": st.integers(8, 40),
}


def photo_crop(china, flower, photo, top, left, size):
    image = {"china": china, "flower": flower}[photo]
    return image[top : top + size, left : left + size].reshape(-1, 3)


PHOTO_DTYPES = {
    "uint8": lambda pixels: pixels,
    "float64 0..255": lambda pixels: pixels.astype(np.float64),
    "float64 [0, 1]": lambda pixels: pixels / 255.0,
    "float32 [0, 1]": lambda pixels: (pixels / 255.0).astype(np.float32),
    "uint16": lambda pixels: pixels.astype(np.uint16) * 257,
    # 16-bit levels, and values that are no levels: every sample is a row.
    "uint16, odd": lambda pixels: pixels.astype(np.uint16) * 255 + 3,
    "float64, not levels": lambda pixels: pixels / 255.0 + 1e-3 * np.sin(pixels),
}


@given(
    **PHOTO_CROPS,
    fewer=st.none() | st.integers(1, 12),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from(sorted(PHOTO_DTYPES)),
    data=st.data(),
)
def test_every_fit_ends_at_a_brute_force_fixed_point(
    china, flower, photo, top, left, size, fewer, seed, dtype, data
):
    crop = photo_crop(china, flower, photo, top, left, size)
    X = PHOTO_DTYPES[dtype](crop)
    # A few clusters fewer than colors: many clusters of one or two colors,
    # whose centroids lie on the integer grid, where ties abound.
    n_colors = len(np.unique(crop, axis=0))
    if fewer is None or fewer >= n_colors:
        n_clusters = data.draw(st.integers(1, 48), label="n_clusters")
    else:
        n_clusters = n_colors - fewer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer distinct colors than clusters
        vq = VectorQuantizer(n_clusters, random_state=seed, max_iter=1000)
        codes = vq.fit_transform(X)[:, 0].astype(np.intp)
    assert vq.n_iter_ < 1000
    codebook = vq.codebook_
    # Every sample at its brute-force nearest codeword, the lowest on ties ...
    expected = brute_force_codes(X, codebook)
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(vq.transform(X)[:, 0], expected)
    # ... and every codeword the mean of its samples.
    X = X.astype(np.float64)
    counts = np.bincount(expected, minlength=len(codebook))
    filled = counts > 0
    sums = np.stack(
        [np.bincount(expected, X[:, f], len(codebook)) for f in range(3)], axis=1
    )
    np.testing.assert_allclose(
        codebook[filled],
        sums[filled] / counts[filled, None],
        rtol=0,
        atol=1e-9 * max(np.ptp(X), 1e-300),
    )
    sq = exact_sq_distances(X, codebook)
    assert vq.inertia_ == pytest.approx(
        sq[np.arange(len(X)), expected].sum(), rel=1e-9, abs=1e-12
    )


@given(
    **PHOTO_CROPS,
    n_clusters=st.integers(2, 40),
    fewer=st.none() | st.integers(1, 12),
    seed=st.integers(0, 2**16),
    relaxation=st.sampled_from([1.0, 1.8]),
    reach=st.sampled_from([0.25, 6.0]),
)
# Found by the "thorough" profile: a point whose bounds tie, checked only
# because the bounds are loosened.
@example(
    photo="china",
    top=254,
    left=254,
    size=39,
    n_clusters=2,
    fewer=8,
    seed=3518,
    relaxation=1.0,
    reach=6.0,
)
def test_passes_are_those_of_brute_force_lloyd_on_random_crops(
    china, flower, photo, top, left, size, n_clusters, fewer, seed, relaxation, reach
):
    # Starting from distinct colors (integer centroids: exact ties), pass
    # for pass the centroids of textbook Lloyd with argmin assignments.
    crop = photo_crop(china, flower, photo, top, left, size)
    rows, weights = colors.unique_rows(crop)
    if fewer is not None and fewer < len(rows) - 1:
        n_clusters = len(rows) - fewer  # many clusters of one or two colors
    if len(rows) <= n_clusters:
        return
    rng = np.random.default_rng(seed)
    start = rows[rng.choice(len(rows), n_clusters, replace=False)]
    assert_passes_of_reference_lloyd(rows, weights, start, relaxation, reach)


@given(
    **PHOTO_CROPS,
    n_clusters=st.integers(2, 40),
    seed=st.integers(0, 2**16),
    relaxation=st.sampled_from([1.0, 1.8]),
    reach=st.sampled_from([0.25, 2.0, 6.0]),
)
def test_every_bound_holds_after_every_epoch(
    china, flower, photo, top, left, size, n_clusters, seed, relaxation, reach
):
    # The bounds are what lets a pass skip a point: after each epoch, each
    # point's must hold for the centroids as they are.
    crop = photo_crop(china, flower, photo, top, left, size)
    rows, weights = colors.unique_rows(crop)
    if len(rows) <= n_clusters:
        return
    rng = np.random.default_rng(seed)
    start = rows[rng.choice(len(rows), n_clusters, replace=False)].astype(np.float64)
    points = None
    epochs = []

    def check(passes, n_iter):
        upper, runner_up, lower_runner_up, lower_rest = passes.bounds()
        # The passes hold the rows grouped by cell; the bounds are theirs.
        sq = exact_sq_distances(points, passes.centers)
        dist = np.sqrt(sq)
        labels = passes.labels
        at = np.arange(len(points))
        assert np.all(upper >= dist[at, labels])
        has = runner_up >= 0
        assert np.all(lower_runner_up[has] <= dist[at[has], runner_up[has]])
        others = dist.copy()
        others[at, labels] = np.inf
        others[at[has], runner_up[has]] = np.inf
        assert np.all(lower_rest <= others.min(axis=1))
        epochs.append(n_iter)

    cell_of_row, pyramid = grid.layout(rows)
    (cell_lo, _), _ = pyramid[0]
    _, _, points, _ = _colors.group_by_box(rows, weights, cell_of_row, len(cell_lo))
    with mock.patch.object(lloyd, "REACH", reach):
        lloyd.run(rows, weights, start, 1000, 0.0, relaxation, on_epoch=check)
    assert epochs


# -- Images in other dtypes: levels ---------------------------------------------

LEVEL_FORMS = {
    # What the same 8-bit image becomes, and the scale of its values.
    "float64 / 255": (lambda u: u / 255.0, 1 / 255),
    "float64 * (1 / 255)": (lambda u: u * (1 / 255.0), 1 / 255),
    "float32 / 255": (lambda u: (u / np.float32(255)).astype(np.float32), 1 / 255),
    "uint16 * 257": (lambda u: u.astype(np.uint16) * 257, 257),
}


@given(**PHOTO_CROPS, form=st.sampled_from(sorted(LEVEL_FORMS)))
def test_an_image_in_another_dtype_has_the_colors_of_its_8_bit_form(
    china, flower, photo, top, left, size, form
):
    crop = photo_crop(china, flower, photo, top, left, size)
    make, scale = LEVEL_FORMS[form]
    found = colors.levels(make(crop))
    assert found.bits == 8
    np.testing.assert_array_equal(found.codes, crop)
    np.testing.assert_allclose(found.values(crop), crop * float(scale), rtol=1e-6)


@pytest.mark.parametrize("form", sorted(LEVEL_FORMS))
@pytest.mark.parametrize("n_clusters", [16, 64])
def test_an_image_in_another_dtype_fits_as_its_8_bit_form(china, form, n_clusters):
    # Same seeds and passes (on the integer codes of the values): the
    # codebook of the 8-bit form, scaled, to the rounding of the values
    # (which can break a tie the other way in the last passes, on the
    # values, and lead elsewhere: not on this crop).
    crop = china[100:300, 100:400].reshape(-1, 3)
    make, scale = LEVEL_FORMS[form]
    as_uint8 = VectorQuantizer(n_clusters, random_state=0).fit(crop)
    other = VectorQuantizer(n_clusters, random_state=0).fit(make(crop))
    np.testing.assert_allclose(
        other.codebook_, as_uint8.codebook_ * scale, rtol=1e-6, atol=1e-6 * scale
    )
    assert other.inertia_ == pytest.approx(as_uint8.inertia_ * scale**2, rel=1e-6)
    assert other.inertia_ == pytest.approx(as_uint8.inertia_ * scale**2, rel=1e-3)


# Values of one kind per array: fractions (some at steps of 1/255 or
# 1/65535, some close to them), or integers.
FRACTIONS = st.sampled_from([0.0, 1.0, 0.5, 1 / 255, 7 / 255, 3 / 65535, 2e-6])
LEVEL_VALUES = st.sampled_from(
    [FRACTIONS, FRACTIONS | st.floats(0, 1), st.integers(0, 65535).map(float)]
)


@given(
    X=st.tuples(st.integers(1, 5), LEVEL_VALUES).flatmap(
        lambda drawn: arrays(
            np.float64,
            st.tuples(st.integers(1, 60), st.just(drawn[0])),
            elements=drawn[1],
        )
    ),
    as_float32=st.booleans(),
)
def test_levels_hold_every_value_exactly(X, as_float32):
    if as_float32:
        X = X.astype(np.float32)
    found = colors.levels(X)
    if found is None:
        return
    assert X.shape[1] <= 4
    codes = found.codes
    assert codes.dtype == (np.uint8 if found.bits == 8 else np.uint16)
    # The values of the codes are the data, and equal codes mean equal rows.
    np.testing.assert_array_equal(found.values(codes), X)
    keys = colors.pack(codes)
    for key in np.unique(keys):
        same = X[keys == key]
        assert (same == same[0]).all()


@pytest.mark.parametrize(
    ("X", "bits"),
    [
        # One feature: the values of a column.
        (np.array([[0, 1 / 255, 1.0]]).T, 8),
        (np.array([[0, 1 / 65535, 1.0]]).T, 16),
        (np.array([[0.0, 0.5, 1.0, 0.25, 1e-9]]).T, None),  # no step
        (np.array([[0.0, 2.0, 300.0]]).T, 16),  # integers up to 65535
        (np.array([[0.0, 2.0, 255.0]]).T, 8),
        (np.array([[0.0, 2.0, 70000.0]]).T, None),
        (np.array([[-1 / 255, 0, 1.0]]).T, None),
        (np.zeros((3, 5)), None),  # more than four features
    ],
)
def test_which_floats_are_levels(X, bits):
    found = colors.levels(X)
    assert (found and found.bits) == bits


@given(
    seed=st.integers(0, 2**16),
    n_features=st.sampled_from([1, 2, 3, 6]),
    n_clusters=st.integers(1, 12),
    weighted=st.booleans(),
)
def test_data_that_are_no_levels_fit_no_worse_than_kmeans(
    seed, n_features, n_clusters, weighted
):
    # Blobs of continuous values: KMeans's own seeds, then Lloyd's passes
    # to a fixed point, where KMeans may stop earlier.
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (6, n_features))
    X = centers[rng.integers(0, 6, 300)] + rng.normal(0, 1, (300, n_features))
    weights = rng.uniform(0.5, 2, len(X)) if weighted else None
    assert colors.levels(X) is None
    ours = VectorQuantizer(n_clusters, random_state=seed).fit(X, sample_weight=weights)
    theirs = KMeans(n_clusters, n_init=1, random_state=seed).fit(
        X, sample_weight=weights
    )
    assert ours.inertia_ <= theirs.inertia_ * (1 + 1e-9)
    codes = ours.transform(X)[:, 0]
    np.testing.assert_array_equal(codes, brute_force_codes(X, ours.codebook_))


def test_many_integer_features_fit_no_worse_than_kmeans():
    """load_digits (64 integer features, distances tie exactly) at K = 256:
    the grid's passes, which break ties by the lowest index, ended above
    ``KMeans(n_init=1)`` on seeds 1, 3 and 4 (by up to 0.09 %); past
    GRID_MAX_FEATURES features KMeans's own passes run, to a fixed point."""
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits

    X = load_digits().data
    for seed in range(5):
        ours = VectorQuantizer(256, random_state=seed).fit(X)
        theirs = KMeans(256, n_init=1, random_state=seed).fit(X)
        assert ours.inertia_ <= theirs.inertia_ * (1 + 1e-12), seed
        codes = ours.transform(X)[:, 0]
        np.testing.assert_array_equal(codes, brute_force_codes(X, ours.codebook_))
        assert_lloyd_fixed_point(X, ours.codebook_, codes)


# -- Big float data: passes over the rows in place (sweep.py) -------------------


def integer_vectors(seed, n_features, dtype, n_rows=400):
    """Rows full of ties that are no levels (negative), in ``dtype``."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-40, 40, size=(n_rows, n_features)).astype(dtype)
    assert colors.levels(X) is None
    return X


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 30),
    n_features=st.integers(1, 4),
    dtype=st.sampled_from([np.float32, np.float64]),
    weighted=st.booleans(),
)
def test_sweep_passes_are_those_of_brute_force_lloyd(
    seed, k, n_features, dtype, weighted
):
    X = integer_vectors(seed, n_features, dtype)
    rng = np.random.default_rng(seed + 1)
    weights = rng.integers(1, 4, len(X)).astype(float) if weighted else None
    rows = np.unique(X, axis=0)
    start = rows[rng.choice(len(rows), min(k, len(rows)), replace=False)]
    start = start.astype(np.float64)
    with mock.patch.object(sweep, "SWEEP_MIN_ROWS", 0):
        codebook, inertia, n_iter, codes = _kmeans.fit_codebook(
            X,
            weights,
            len(start),
            init=start,
            n_init=1,
            max_iter=1000,
            tol=0,
            random_state=0,
            return_codes=True,
        )
    w = np.ones(len(X)) if weights is None else weights
    expected, expected_iter, _ = reference_lloyd(X.astype(np.float64), w, start)
    assert n_iter == expected_iter < 1000
    np.testing.assert_allclose(codebook, expected, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(codes, brute_force_codes(X, codebook))
    sq = exact_sq_distances(X, codebook)
    assert inertia == pytest.approx(w @ sq[np.arange(len(X)), codes], rel=1e-12)


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 60),
    n_features=st.integers(1, 4),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_sweep_seeded_on_its_histogram_ends_at_a_brute_force_fixed_point(
    seed, k, n_features, dtype
):
    # With a histogram cell per two rows, the larger k find too few cells
    # and are fitted by the bounded passes instead: both end alike.
    X = integer_vectors(seed, n_features, dtype)
    with (
        mock.patch.object(sweep, "SWEEP_MIN_ROWS", 0),
        mock.patch.object(sweep, "ROWS_PER_HISTOGRAM_CELL", 2),
    ):
        codebook, _, _, codes = _kmeans.fit_codebook(
            X,
            None,
            k,
            init="k-means++",
            n_init=1,
            max_iter=1000,
            tol=0,
            random_state=seed,
            return_codes=True,
        )
    assert len(codebook) == k
    np.testing.assert_array_equal(codes, brute_force_codes(X, codebook))
    assert_lloyd_fixed_point(X, codebook, codes)


@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 300),
    n_features=st.integers(1, 4),
    dtype=st.sampled_from([np.float32, np.float64]),
    spread=st.sampled_from([1, 40, 400]),
)
def test_sweep_assigns_every_row_as_brute_force(seed, k, n_features, dtype, spread):
    # Codewords anywhere, beyond the rows' box too (a codebook fitted on
    # other data), many ties: each row gets the nearest, the lowest on ties.
    X = integer_vectors(seed, n_features, dtype)
    codebook = np.random.default_rng(seed + 1).integers(
        -spread, spread, size=(k, n_features)
    )
    with mock.patch.object(sweep, "SWEEP_MIN_ROWS", 0):
        codes, distances = _kmeans.assign(
            X, codebook.astype(float), return_distance=False
        )
    assert distances is None and codes.dtype == np.min_scalar_type(k - 1)
    np.testing.assert_array_equal(codes, brute_force_codes(X, codebook))


def with_peak_allocation(function, *args):
    """``function(*args)`` and the most memory it had allocated at once."""
    tracemalloc.start()
    try:
        result = function(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_big_float32_data_are_fitted_without_a_float64_copy():
    # Issue 18: 20 M rows of float32 took 13.8 times their size; a float64
    # copy alone is twice their size. The sweep keeps 5 bytes a row.
    X = np.random.default_rng(0).random((sweep.SWEEP_MIN_ROWS, 3), dtype=np.float32)
    codes, peak = with_peak_allocation(
        VectorQuantizer(16, max_iter=2, random_state=0).fit_transform, X
    )
    assert peak < 0.75 * X.nbytes
    assert codes.dtype == np.uint8


def test_big_float32_data_are_scored_without_a_float64_copy():
    X = np.random.default_rng(0).random((sweep.SWEEP_MIN_ROWS, 3), dtype=np.float32)
    weights = np.random.default_rng(1).random(len(X))
    quantizer = VectorQuantizer(16, max_iter=2, random_state=0).fit(X[:100_000])
    score, peak = with_peak_allocation(quantizer.score, X)
    assert peak < 0.75 * X.nbytes
    # Brute force, a block of rows at a time.
    sq = np.concatenate(
        [
            brute_sq_distances(block, quantizer.codebook_).min(axis=1)
            for block in np.array_split(X, 100)
        ]
    )
    assert score == pytest.approx(-sq.mean(), rel=1e-9)
    weighted = quantizer.score(X, sample_weight=weights)
    assert weighted == pytest.approx(-np.average(sq, weights=weights), rel=1e-9)


def test_big_float32_data_are_coded_without_a_float64_copy():
    X = np.random.default_rng(0).random((sweep.SWEEP_MIN_ROWS, 3), dtype=np.float32)
    quantizer = VectorQuantizer(16, max_iter=2, random_state=0).fit(X[:100_000])
    codes, peak = with_peak_allocation(quantizer.transform, X)
    assert peak < 0.75 * X.nbytes
    np.testing.assert_array_equal(
        codes[:1000, 0], brute_force_codes(X[:1000], quantizer.codebook_)
    )


@given(
    arrays(
        st.sampled_from([np.uint8, np.uint16, np.float32, np.float64]),
        st.tuples(st.integers(1, 300), st.integers(1, 5)),
        elements={"allow_nan": False, "allow_infinity": False},
    )
)
def test_column_ranges_are_the_least_and_greatest_of_each_feature(values):
    from skvq._engine.grid import column_ranges

    lo, hi = column_ranges(values)
    np.testing.assert_array_equal(lo, values.min(axis=0))
    np.testing.assert_array_equal(hi, values.max(axis=0))
    assert lo.dtype == hi.dtype == values.dtype
