import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import (
    check_get_feature_names_out_error,
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skvq import VectorQuantizer, code_dtype

# Every check of check_estimator passes; none is expected to fail.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks(
    [VectorQuantizer(random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # Many common checks fit on fewer distinct rows than n_clusters.
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize(
    "check",
    [
        check_param_validation,
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_get_feature_names_out_error,
    ],
)
def test_checks_outside_check_estimator(check):
    pytest.importorskip("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(VectorQuantizer.__name__, VectorQuantizer(random_state=0))


def test_pandas_output_round_trip(small_photo):
    pd = pytest.importorskip("pandas")
    pixels = small_photo.reshape(-1, 3)
    frame = pd.DataFrame(pixels, columns=["r", "g", "b"])
    vq = VectorQuantizer(4, random_state=0).set_output(transform="pandas").fit(frame)
    codes = vq.transform(frame)
    assert isinstance(codes, pd.DataFrame)
    assert list(codes.columns) == ["vectorquantizer0"]
    assert list(vq.get_feature_names_out()) == ["vectorquantizer0"]
    np.testing.assert_array_equal(
        vq.inverse_transform(codes), vq.codebook_[codes.to_numpy()[:, 0]]
    )


def _random_colors(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3), dtype=np.uint8)


@pytest.mark.parametrize(("n_clusters", "dtype"), [(257, np.uint16), (300, np.uint16)])
def test_more_than_256_codes_do_not_wrap(n_clusters, dtype):
    X = _random_colors(2000)
    vq = VectorQuantizer(n_clusters, random_state=0, max_iter=20).fit(X)
    codes = vq.transform(X)
    assert codes.dtype == dtype
    assert codes.shape == (2000, 1)
    assert codes.max() > 255  # codes above 255 exist and are kept
    assert codes.max() < n_clusters
    assert len(np.unique(codes)) == n_clusters
    # The codes index the nearest codeword, so decoding them must not alias
    # codeword c + 256 to codeword c.
    distances = ((X[:, None, :] - vq.codebook_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(codes[:, 0], distances.argmin(axis=1))


@pytest.mark.parametrize(
    ("n_codes", "dtype"),
    [(1, np.uint8), (256, np.uint8), (257, np.uint16), (65536, np.uint16)],
)
def test_code_dtype(n_codes, dtype):
    assert code_dtype(n_codes) == dtype


def test_code_dtype_beyond_uint16():
    assert code_dtype(65537) == np.uint32


def test_inverse_transform_accepts_what_transform_returns(small_photo):
    X = small_photo.reshape(-1, 3)
    vq = VectorQuantizer(8, random_state=0).fit(X)
    codes = vq.transform(X)
    expected = vq.codebook_[codes[:, 0]]
    np.testing.assert_array_equal(vq.inverse_transform(codes), expected)
    np.testing.assert_array_equal(vq.inverse_transform(codes[:, 0]), expected)
    np.testing.assert_array_equal(vq.inverse_transform(codes.tolist()), expected)


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (np.array([[0, 1]]), r"codes must have shape \(n_samples, 1\)"),
        (np.array([0, 8]), r"codes must lie in \[0, 7\]"),
        (np.array([-1, 0]), r"codes must lie in \[0, 7\]"),
        (np.array([0.5]), "codes must be integers"),
        (np.array(["a"]), "codes must be integers"),
    ],
)
def test_inverse_transform_rejects_bad_codes(small_photo, codes, message):
    vq = VectorQuantizer(8, random_state=0).fit(small_photo.reshape(-1, 3))
    with pytest.raises(ValueError, match=message):
        vq.inverse_transform(codes)


def test_score_is_negative_mean_squared_distortion(small_photo):
    X = small_photo.reshape(-1, 3)
    vq = VectorQuantizer(6, random_state=0).fit(X)
    score = vq.score(X)
    assert type(score) is float
    reconstruction = vq.inverse_transform(vq.transform(X))
    expected = -np.mean(np.sum((X - reconstruction) ** 2, axis=1))
    assert score == pytest.approx(expected, rel=1e-12)
    assert vq.inertia_ == pytest.approx(-expected * len(X), rel=1e-6)
    weights = np.arange(len(X), dtype=float)
    weighted = -np.average(np.sum((X - reconstruction) ** 2, axis=1), weights=weights)
    assert vq.score(X, sample_weight=weights) == pytest.approx(weighted, rel=1e-12)


def test_score_rises_with_k(small_photo):
    X = small_photo.reshape(-1, 3)
    scores = [VectorQuantizer(k, random_state=0).fit(X).score(X) for k in (2, 8, 32)]
    assert scores[0] < scores[1] < scores[2] <= 0


def test_fewer_distinct_rows_than_clusters_is_lossless():
    rng = np.random.default_rng(1)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [10, 20, 30]], np.uint8)
    X = palette[rng.integers(0, 4, size=500)]
    with pytest.warns(ConvergenceWarning, match="4 distinct rows, fewer than"):
        vq = VectorQuantizer(16, random_state=0).fit(X)
    assert vq.codebook_.shape == (4, 3)
    assert vq.n_codes_ == 4
    # No duplicate or empty centroids: exactly the distinct colors.
    np.testing.assert_array_equal(
        np.unique(vq.codebook_, axis=0), np.unique(palette, axis=0)
    )
    np.testing.assert_array_equal(vq.inverse_transform(vq.transform(X)), X)
    assert vq.score(X) == 0.0
    assert vq.inertia_ == 0.0


def test_sample_weight_changes_the_codebook():
    X = np.array([[0.0], [1.0], [10.0], [11.0], [20.0]])
    plain = VectorQuantizer(2, random_state=0).fit(X)
    weighted = VectorQuantizer(2, random_state=0).fit(
        X, sample_weight=[1, 1, 1, 1, 100]
    )
    assert sorted(plain.codebook_[:, 0]) != sorted(weighted.codebook_[:, 0])
    # The heavy point pulls its centroid to itself.
    assert np.min(np.abs(weighted.codebook_[:, 0] - 20.0)) < 0.5


def test_zero_weight_rows_do_not_become_codewords():
    X = np.array([[0.0], [1.0], [100.0]])
    with pytest.warns(ConvergenceWarning, match="2 distinct rows"):
        vq = VectorQuantizer(3).fit(X, sample_weight=[1, 1, 0])
    np.testing.assert_array_equal(np.sort(vq.codebook_[:, 0]), [0.0, 1.0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_clusters": 0}, "'n_clusters' parameter"),
        ({"init": "kmeans"}, "'init' parameter"),
        ({"n_init": 0}, "'n_init' parameter"),
        ({"max_iter": 0}, "'max_iter' parameter"),
        ({"tol": -1.0}, "'tol' parameter"),
        ({"verbose": -1}, "'verbose' parameter"),
    ],
)
def test_invalid_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        VectorQuantizer(**params).fit(np.zeros((4, 3)))


def test_transform_rejects_wrong_number_of_features(small_photo):
    vq = VectorQuantizer(4, random_state=0).fit(small_photo.reshape(-1, 3))
    with pytest.raises(ValueError, match="X has 4 features"):
        vq.transform(np.zeros((2, 4)))


def test_joblib_persistence_is_small_and_identical(china):
    # A 12-megapixel image: the sample photo tiled 7 x 7 (2989 x 4480).
    big = np.tile(china, (7, 7, 1)).reshape(-1, 3)
    assert big.shape[0] >= 12_000_000
    vq = VectorQuantizer(16, random_state=0).fit(big)
    buffer = io.BytesIO()
    joblib.dump(vq, buffer)
    assert buffer.tell() < 8_000  # the codebook and parameters, not labels
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert loaded.get_params() == vq.get_params()
    np.testing.assert_array_equal(loaded.codebook_, vq.codebook_)
    sample = china.reshape(-1, 3)
    np.testing.assert_array_equal(loaded.transform(sample), vq.transform(sample))


def test_pickle_keeps_no_per_sample_state(small_photo):
    X = small_photo.reshape(-1, 3)
    vq = VectorQuantizer(4, random_state=0).fit(X)
    for value in vars(vq).values():
        assert np.size(value) < len(X)
    assert len(pickle.dumps(vq)) < 2_000


# -- Hypothesis properties ----------------------------------------------------

small_uint8_data = hnp.arrays(
    np.uint8,
    st.tuples(st.integers(1, 60), st.integers(1, 4)),
    elements=st.integers(0, 255),
)
small_float_data = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 60), st.integers(1, 3)),
    elements=st.floats(-100, 100, allow_nan=False, width=32),
)


def _fit_quietly(X, n_clusters, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VectorQuantizer(n_clusters, random_state=0, **params).fit(X)


@given(X=st.one_of(small_uint8_data, small_float_data), n_clusters=st.integers(1, 12))
def test_transform_is_idempotent_through_the_codebook(X, n_clusters):
    vq = _fit_quietly(X, n_clusters)
    codes = vq.transform(X)
    np.testing.assert_array_equal(vq.transform(vq.inverse_transform(codes)), codes)


@given(X=st.one_of(small_uint8_data, small_float_data), n_clusters=st.integers(1, 300))
def test_codes_below_k_in_minimal_dtype(X, n_clusters):
    vq = _fit_quietly(X, n_clusters, max_iter=10)
    codes = vq.transform(X)
    assert vq.n_codes_ <= n_clusters
    assert codes.dtype == code_dtype(vq.n_codes_)
    assert codes.shape == (len(X), 1)
    assert codes.max() < vq.n_codes_


@given(X=st.one_of(small_uint8_data, small_float_data), extra=st.integers(0, 5))
def test_lossless_when_k_covers_distinct_rows(X, extra):
    n_distinct = len(np.unique(X, axis=0))
    vq = _fit_quietly(X, n_distinct + extra)
    assert vq.n_codes_ == n_distinct
    np.testing.assert_array_equal(vq.inverse_transform(vq.transform(X)), X)


@given(
    X=hnp.arrays(
        np.float64,
        st.tuples(st.integers(2, 80), st.integers(1, 3)),
        elements=st.integers(-50, 50).map(float),
    ),
    n_clusters=st.integers(1, 6),
)
def test_converged_codebook_rows_are_means_of_their_samples(X, n_clusters):
    vq = _fit_quietly(X, n_clusters, tol=0.0, max_iter=1000)
    codes = vq.transform(X)[:, 0]
    for k in range(vq.n_codes_):
        members = X[codes == k]
        assert len(members) > 0, "no empty cluster"
        np.testing.assert_allclose(vq.codebook_[k], members.mean(axis=0), atol=1e-9)


@given(
    X=st.one_of(small_uint8_data, small_float_data),
    n_clusters=st.integers(1, 12),
    max_iter=st.sampled_from([1, 2, 300]),
    weighted=st.booleans(),
    data=st.data(),
)
def test_fit_transform_is_fit_then_transform(X, n_clusters, max_iter, weighted, data):
    sample_weight = None
    if weighted:
        sample_weight = data.draw(
            hnp.arrays(np.float64, len(X), elements=st.sampled_from([0.0, 1.0, 2.5]))
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        params = dict(n_clusters=n_clusters, max_iter=max_iter, random_state=0)
        if sample_weight is not None and not sample_weight.any():
            with pytest.raises(ValueError, match="weight"):
                VectorQuantizer(**params).fit_transform(X, sample_weight=sample_weight)
            return
        vq = VectorQuantizer(**params)
        codes = vq.fit_transform(X, sample_weight=sample_weight)
        reference = VectorQuantizer(**params).fit(X, sample_weight=sample_weight)
    np.testing.assert_array_equal(vq.codebook_, reference.codebook_)
    assert codes.dtype == reference.transform(X).dtype
    np.testing.assert_array_equal(codes, reference.transform(X))


def test_verbose_reports_the_seeding_and_each_run_of_lloyd(small_photo, capsys):
    X = small_photo.reshape(-1, 3)
    quiet = VectorQuantizer(8, random_state=0).fit(X)
    assert capsys.readouterr().out == ""
    vq = VectorQuantizer(8, random_state=0, verbose=1).fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[VectorQuantizer]")
    assert "seeding 1 of 1 (k-means++): 8 centroids" in lines[0]
    # The last run is over the distinct colors and ends the fit.
    n_colors = len(np.unique(X, axis=0))
    assert lines[-1].endswith(
        f"Lloyd on {n_colors:,} points: fixed point after {vq.n_iter_} passes, "
        f"inertia {vq.inertia_:.6g}"
    )
    assert all("Lloyd on" in line for line in lines[1:])
    # Reporting changes nothing in the fit.
    np.testing.assert_array_equal(vq.codebook_, quiet.codebook_)


def test_verbose_2_reports_the_steps_within_each_run(capsys):
    X = np.random.default_rng(0).random((2000, 4))
    VectorQuantizer(8, random_state=0, verbose=1).fit(X)
    stages = capsys.readouterr().out.splitlines()
    VectorQuantizer(8, random_state=0, verbose=2).fit(X)
    steps = capsys.readouterr().out.splitlines()
    assert len(steps) > len(stages) == 2
    assert any(line.endswith(" passes") and "fixed point" not in line for line in steps)
    with_n_init = VectorQuantizer(8, random_state=0, verbose=1, n_init=3, init="random")
    with_n_init.fit(X)
    seedings = [
        line for line in capsys.readouterr().out.splitlines() if "seeding" in line
    ]
    assert [line.split("seeding ")[1][:6] for line in seedings] == [
        "1 of 3",
        "2 of 3",
        "3 of 3",
    ]


def test_partial_fit_is_verbose_too(small_photo, capsys):
    VectorQuantizer(4, random_state=0, verbose=1).partial_fit(
        small_photo.reshape(-1, 3)
    )
    assert "Lloyd on" in capsys.readouterr().out
