import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skvq import VectorQuantizer, metrics
from skvq.metrics import (
    bits_per_pixel,
    make_psnr_scorer,
    neg_bits_per_pixel_scorer,
    psnr,
    psnr_scorer,
    smallest_k_reaching,
)

K_GRID = [2, 4, 8, 16, 32, 64]


def test_psnr_of_a_known_error():
    original = np.zeros((10, 10, 3))
    noisy = original.copy()
    noisy[0, 0, 0] = 255  # MSE = 255**2 / 300
    assert psnr(original, noisy) == pytest.approx(10 * math.log10(300))
    assert psnr(original, original) == math.inf


@given(
    seed=st.integers(0, 2**16),
    shape=st.sampled_from([(7,), (3, 5, 3), (700, 900), (1 << 18) + 1, (600, 500, 3)]),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64]),
)
def test_psnr_is_the_mean_squared_error_in_decibels(seed, shape, dtype):
    # Taken a block at a time (here blocks of 1,000 values, and the
    # library's own): the MSE of the whole, written out.
    rng = np.random.default_rng(seed)
    peak = np.iinfo(dtype).max if dtype in (np.uint8, np.uint16) else 1.0
    a = (rng.random(shape) * peak).astype(dtype)
    b = (rng.random(shape) * peak).astype(dtype)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    expected = 10 * math.log10(peak**2 / mse)
    assert psnr(a, b, data_range=peak) == pytest.approx(expected, rel=1e-12)
    if np.issubdtype(dtype, np.integer) and np.dtype(dtype).itemsize == 1:
        exact = int(((a.astype(np.int64) - b.astype(np.int64)) ** 2).sum())
        assert metrics._squared_error(a.reshape(-1), b.reshape(-1)) == exact
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "_ERROR_BLOCK", 1000)
        assert psnr(a, b, data_range=peak) == pytest.approx(expected, rel=1e-12)


def test_psnr_of_empty_images_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        psnr(np.zeros((0, 3)), np.zeros((0, 3)))


def test_psnr_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="Shapes differ"):
        psnr(np.zeros((2, 2)), np.zeros((2, 3)))


@given(n=st.integers(1, 10**9), d=st.integers(1, 4), k=st.integers(1, 70000))
def test_bits_per_pixel_formula(n, d, k):
    expected = (n * math.ceil(math.log2(k)) + k * d * 8) / n
    assert bits_per_pixel(n, d, k) == pytest.approx(expected)


def test_scorers_on_a_fitted_quantizer(small_photo):
    X = small_photo.reshape(-1, 3)
    vq = VectorQuantizer(8, random_state=0).fit(X)
    mse_per_value = -vq.score(X) / 3
    assert psnr_scorer(vq, X) == pytest.approx(10 * np.log10(255**2 / mse_per_value))
    assert neg_bits_per_pixel_scorer(vq, X) == pytest.approx(
        -(len(X) * 3 + 8 * 3 * 8) / len(X)
    )


@pytest.fixture(scope="module")
def pixels(china):
    # Every 7th pixel of the sample photo: real colors, quick to search over.
    return china.reshape(-1, 3)[::7]


def _search(pixels, **kwargs):
    pipeline = Pipeline(
        [
            ("identity", FunctionTransformer()),
            ("vq", VectorQuantizer(random_state=0)),
        ]
    )
    search = GridSearchCV(
        pipeline,
        {"vq__n_clusters": K_GRID},
        cv=KFold(3, shuffle=True, random_state=0),
        **kwargs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return search.fit(pixels)


def test_grid_search_on_distortion_alone_picks_the_largest_k(pixels):
    search = _search(pixels)
    assert search.best_params_["vq__n_clusters"] == max(K_GRID)


@pytest.mark.parametrize("target", [24.0, 28.0, 31.0])
def test_grid_search_refits_smallest_k_reaching_target_psnr(pixels, target):
    search = _search(
        pixels,
        scoring={"psnr": psnr_scorer, "bpp": neg_bits_per_pixel_scorer},
        refit=smallest_k_reaching(target),
    )
    mean_psnr = search.cv_results_["mean_test_psnr"]
    # PSNR grows with K on this photo, and the targets lie inside the grid.
    assert np.all(np.diff(mean_psnr) > 0)
    assert mean_psnr[0] < target < mean_psnr[-1]
    chosen = search.best_params_["vq__n_clusters"]
    assert mean_psnr[K_GRID.index(chosen)] >= target
    smaller = [k for k in K_GRID if k < chosen]
    assert all(mean_psnr[K_GRID.index(k)] < target for k in smaller)
    # The refitted pipeline carries that K, fitted on all the pixels.
    assert search.best_estimator_["vq"].n_codes_ == chosen
    bpp = -search.cv_results_["mean_test_bpp"]
    assert np.all(np.diff(bpp) > 0)


def test_unreachable_target_falls_back_to_best_psnr_and_says_so():
    refit = smallest_k_reaching(99.0)
    results = {
        "mean_test_psnr": np.array([20.0, 30.0, 25.0]),
        "params": [{"n_clusters": 2}, {"n_clusters": 8}, {"n_clusters": 4}],
    }
    with pytest.warns(UserWarning, match=r"No K reaches 99 dB; the best is 30.00 dB"):
        assert refit(results) == 1


def test_a_wrong_psnr_key_is_named_before_fitting():
    scoring = {"quality": psnr_scorer, "bpp": neg_bits_per_pixel_scorer}
    with pytest.raises(ValueError, match=r"psnr_key='psnr' is not a key of scoring"):
        smallest_k_reaching(30.0, scoring=scoring)


def test_a_wrong_psnr_key_at_refit_lists_the_scoring_keys():
    refit = smallest_k_reaching(30.0)
    results = {
        "mean_test_quality": np.array([20.0]),
        "mean_test_bpp": np.array([-2.0]),
        "params": [{"n_clusters": 2}],
    }
    with pytest.raises(ValueError, match=r"the scoring keys are \['bpp', 'quality'\]"):
        refit(results)


def _oracle_psnr(X, X_hat, peak):
    X, X_hat = np.asarray(X, float), np.asarray(X_hat, float)
    return 10 * math.log10(peak**2 / np.mean((X - X_hat) ** 2))


@pytest.mark.parametrize(
    ("scale", "dtype", "peak"),
    [
        (1 / 255, np.float64, 1.0),  # skimage.img_as_float
        (1 / 255, np.float32, 1.0),
        (1, np.float64, 255.0),  # integral floats: 8-bit values
        (1, np.int64, 255.0),
        (257, np.uint16, 65535.0),  # the same photo as 16-bit
    ],
)
def test_psnr_scorer_measures_against_the_data_range(small_photo, scale, dtype, peak):
    X = (small_photo.reshape(-1, 3) * float(scale)).astype(dtype)
    vq = VectorQuantizer(8, random_state=0).fit(X)
    expected = _oracle_psnr(X, vq.inverse_transform(vq.transform(X)), peak)
    assert psnr_scorer(vq, X) == pytest.approx(expected)
    # Whatever the scale, the photo at K=8 is about 25 dB, not 55-79 dB.
    assert 20 < psnr_scorer(vq, X) < 32


def test_psnr_scorer_refuses_data_without_a_range(small_photo):
    X = small_photo.reshape(-1, 3).astype(float)
    X = (X - X.mean(axis=0)) / X.std(axis=0)  # StandardScaler
    vq = VectorQuantizer(8, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"make_psnr_scorer\(data_range=...\)"):
        psnr_scorer(vq, X)
    scorer = make_psnr_scorer(data_range=np.ptp(X))
    expected = _oracle_psnr(X, vq.inverse_transform(vq.transform(X)), np.ptp(X))
    assert scorer(vq, X) == pytest.approx(expected)


def test_a_data_range_smaller_than_the_data_warns(small_photo):
    X = small_photo.reshape(-1, 3).astype(float)
    vq = VectorQuantizer(8, random_state=0).fit(X)
    with pytest.warns(UserWarning, match="more than data_range=1: the PSNR overstates"):
        make_psnr_scorer(data_range=1.0)(vq, X)


@pytest.mark.parametrize("data_range", [0, -1.0, float("nan")])
def test_make_psnr_scorer_needs_a_positive_range(data_range):
    with pytest.raises(ValueError, match="data_range must be positive"):
        make_psnr_scorer(data_range=data_range)


def test_refit_needs_exactly_one_k_parameter():
    refit = smallest_k_reaching(10.0, param="n_clusters")
    results = {"mean_test_psnr": np.array([20.0]), "params": [{"max_iter": 5}]}
    with pytest.raises(ValueError, match="exactly one grid parameter ending in"):
        refit(results)
