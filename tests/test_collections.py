"""One codebook for a collection: partial_fit, shared codebooks, fit-codebook."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
from PIL import Image
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skvq  # noqa: F401  registers the .vq format
from skvq import VectorQuantizer
from skvq.cli import EXIT_FAILED, EXIT_OK, main


@pytest.fixture(scope="module")
def collection():
    """Three different photos' pixels, as a collection of chunks."""
    from sklearn.datasets import load_sample_image

    china = load_sample_image("china.jpg")
    flower = load_sample_image("flower.jpg")
    return [
        china[::2, ::2].reshape(-1, 3),
        flower[::2, ::2].reshape(-1, 3),
        china[1::2, 1::2].reshape(-1, 3),
        flower[1::2, ::3].reshape(-1, 3),
        china[::3, 1::2].reshape(-1, 3),
    ]


def fit_of_colors(X, n_clusters, **params):
    """``fit`` on the distinct rows of ``X`` weighted by their counts.

    What a stream or a collection fit gives, exactly: the same objective and
    the same exact Lloyd passes as ``fit`` on the samples, which draws its
    k-means++ seeds over the samples in their order (as KMeans does), where
    a histogram has only its colors to draw on.
    """
    rows, counts = np.unique(X, axis=0, return_counts=True)
    return VectorQuantizer(n_clusters, **params).fit(rows, sample_weight=counts)


@pytest.mark.parametrize("n_clusters", [8, 32])
def test_partial_fit_equals_fit_on_the_whole_set(collection, n_clusters):
    everything = np.concatenate(collection)
    full = VectorQuantizer(n_clusters, random_state=0).fit(everything)
    streamed = VectorQuantizer(n_clusters, random_state=0)
    for chunk in collection:
        streamed.partial_fit(chunk)
    # The issue asks for 1% of fit's distortion; the stream gives exactly the
    # fit of the colors seen.
    mse_full = -full.score(everything)
    mse_streamed = -streamed.score(everything)
    assert mse_streamed <= 1.01 * mse_full
    of_colors = fit_of_colors(everything, n_clusters, random_state=0)
    np.testing.assert_array_equal(streamed.codebook_, of_colors.codebook_)


def test_partial_fit_on_one_chunk_equals_fit(collection):
    chunk = collection[0]
    full = fit_of_colors(chunk, 16, random_state=0)
    streamed = VectorQuantizer(16, random_state=0).partial_fit(chunk)
    np.testing.assert_array_equal(streamed.codebook_, full.codebook_)
    assert streamed.inertia_ == pytest.approx(full.inertia_)


def test_partial_fit_is_deterministic(collection):
    books = []
    for _ in range(2):
        vq = VectorQuantizer(8, random_state=3)
        for chunk in collection[:3]:
            vq.partial_fit(chunk)
        books.append(vq.codebook_)
    np.testing.assert_array_equal(*books)


def test_partial_fit_with_sample_weight_equals_repeated_samples():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(300, 3), dtype=np.uint8)
    counts = rng.integers(1, 4, size=300)
    weighted = VectorQuantizer(5, random_state=0)
    repeated = VectorQuantizer(5, random_state=0)
    for part in np.array_split(np.arange(300), 3):
        weighted.partial_fit(X[part], sample_weight=counts[part])
        repeated.partial_fit(np.repeat(X[part], counts[part], axis=0))
    np.testing.assert_allclose(weighted.codebook_, repeated.codebook_)


def test_partial_fit_starts_lossless_then_grows():
    palette = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    vq = VectorQuantizer(4, random_state=0)
    with pytest.warns(ConvergenceWarning, match="2 distinct rows"):
        vq.partial_fit(np.repeat(palette, 10, axis=0))
    assert vq.n_codes_ == 2
    more = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    vq.partial_fit(np.repeat(more, 5, axis=0))
    assert vq.n_codes_ == 4
    assert vq.codebook_.shape == (4, 3)


def test_partial_fit_rejects_a_different_number_of_features(collection):
    vq = VectorQuantizer(4, random_state=0).partial_fit(collection[0])
    with pytest.raises(ValueError, match="X has 4 features"):
        vq.partial_fit(np.zeros((10, 4), np.uint8))


def test_fit_discards_the_stream(collection):
    vq = VectorQuantizer(4, random_state=0)
    for chunk in collection[:2]:
        vq.partial_fit(chunk)
    streamed_size = len(pickle.dumps(vq))
    vq.fit(collection[0])
    assert len(pickle.dumps(vq)) < 2_000 < streamed_size


def test_partial_fit_state_is_bounded_by_the_colors_not_the_pixels(collection):
    vq = VectorQuantizer(4, random_state=0)
    vq.partial_fit(collection[0])
    size_once = len(pickle.dumps(vq))
    for _ in range(3):  # the same colors again: more pixels, no new state
        vq.partial_fit(collection[0])
    assert len(pickle.dumps(vq)) == size_once


def test_partial_fit_on_float_data_uses_mini_batches():
    rng = np.random.default_rng(0)
    centers = rng.uniform(0, 1, size=(6, 2))
    X = centers[rng.integers(0, 6, 3000)] + rng.normal(0, 0.01, size=(3000, 2))
    full = VectorQuantizer(6, random_state=0).fit(X)
    streamed = VectorQuantizer(6, random_state=0)
    for chunk in np.array_split(X, 10):
        streamed.partial_fit(chunk)
    assert streamed.n_iter_ == 10  # one mini-batch step per chunk
    assert -streamed.score(X) <= 1.1 * -full.score(X)


@pytest.mark.parametrize(
    "form",
    [
        lambda u: u.astype(np.float64),  # integral floats: the uint8 path of fit
        lambda u: u / 255,
        lambda u: (u / np.float32(255)).astype(np.float32),
        lambda u: u.astype(np.uint16) * 257,
    ],
    ids=["float-0-255", "float64-0-1", "float32-0-1", "uint16"],
)
def test_partial_fit_on_image_bands_equals_fit(china, form):
    # Chunks in image order (bands of rows), the hardest order for a stream.
    X = form(china[::2, ::2].reshape(-1, 3))
    full = fit_of_colors(X, 16, random_state=0)
    streamed = VectorQuantizer(16, random_state=0)
    for band in np.array_split(X, 6):
        streamed.partial_fit(band)
    np.testing.assert_array_equal(streamed.codebook_, full.codebook_)
    assert streamed.inertia_ == pytest.approx(full.inertia_, rel=1e-12)


def test_partial_fit_on_vectors_is_minibatch_kmeans():
    # Data that are no levels: scikit-learn's own mini-batch updates.
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 5))
    ours = VectorQuantizer(8, random_state=0)
    theirs = MiniBatchKMeans(8, random_state=0, n_init="auto", max_iter=300, tol=0.0)
    for chunk in np.array_split(X, 4):
        ours.partial_fit(chunk)
        theirs.partial_fit(chunk)
    np.testing.assert_allclose(ours.codebook_, theirs.cluster_centers_)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_partial_fit_follows_set_params(collection, dtype):
    chunks = [chunk.astype(dtype) for chunk in collection[:3]]
    if dtype == np.float64:  # no levels: mini-batches
        chunks = [chunk + 0.25 for chunk in chunks]
    vq = VectorQuantizer(8, random_state=0)
    vq.partial_fit(chunks[0])
    assert vq.n_codes_ == 8
    vq.set_params(n_clusters=32)
    vq.partial_fit(chunks[1])
    assert vq.n_codes_ == 32 and vq.codebook_.shape == (32, 3)
    vq.partial_fit(chunks[2])
    assert vq.n_codes_ == 32
    if dtype == np.uint8:  # still exactly fit on everything, at the new K
        full = fit_of_colors(np.concatenate(chunks), 32, random_state=0)
        np.testing.assert_array_equal(vq.codebook_, full.codebook_)


def test_partial_fit_warns_with_the_current_numbers():
    palette = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0]], np.uint8)
    vq = VectorQuantizer(2, random_state=0).partial_fit(palette[:2])
    vq.set_params(n_clusters=8)
    with pytest.warns(
        ConvergenceWarning,
        match=r"the samples seen so far have 3 distinct rows, fewer than n_clusters=8",
    ):
        vq.partial_fit(palette[2:])
    assert vq.n_codes_ == 3


# -- shared codebooks in .vq files ---------------------------------------------


def _fitted_book(collection, k=16):
    vq = VectorQuantizer(k, random_state=0)
    for chunk in collection:
        vq.partial_fit(chunk)
    return vq


def test_images_saved_with_a_shared_codebook(tmp_path, collection, china):
    book = _fitted_book(collection)
    palette = np.clip(np.rint(book.codebook_), 0, 255).astype(np.uint8)
    for i, crop in enumerate([china[:50, :70], china[200:260, 300:390]]):
        path = tmp_path / f"{i}.vq"
        Image.fromarray(crop).save(path, codebook=book)
        with Image.open(path) as image:
            assert image.mode == "P"
            stored = np.array(image.getpalette()[: 3 * 16], np.uint8).reshape(16, 3)
            np.testing.assert_array_equal(stored, palette)
            codes = np.asarray(image)
        expected = book.transform(crop.reshape(-1, 3)).reshape(crop.shape[:2])
        np.testing.assert_array_equal(codes, expected)


def test_shared_codebook_needs_matching_channels(collection, china):
    book = _fitted_book(collection, k=4)
    rgba = Image.fromarray(china[:10, :10]).convert("RGBA")
    with pytest.raises(ValueError, match=r"fitted on 3 channels but the image has 4"):
        rgba.save(io.BytesIO(), format="VQ", codebook=book)


@pytest.mark.parametrize(
    ("book", "error", "message"),
    [
        (np.zeros((4, 3)), ValueError, "must be a fitted skvq.VectorQuantizer"),
        (VectorQuantizer(4), NotFittedError, "not fitted yet"),
    ],
)
def test_shared_codebook_must_be_a_fitted_quantizer(china, book, error, message):
    with pytest.raises(error, match=message):
        Image.fromarray(china[:10, :10]).save(io.BytesIO(), format="VQ", codebook=book)


@pytest.fixture
def photo_dir(tmp_path, china):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(china[120 * i : 120 * i + 60, 100:180]).save(
            folder / f"{i}.png"
        )
    return folder


def test_cli_fit_codebook_then_encode_with_it(tmp_path, photo_dir, capsys):
    book_path = tmp_path / "book.joblib"
    status = main(["fit-codebook", str(photo_dir), "-k", "8", "-o", str(book_path)])
    assert status == EXIT_OK
    assert (
        "fitted K = 8 RGB colors on 3 images (14,400 pixels)" in capsys.readouterr().out
    )
    book = joblib.load(book_path)
    assert isinstance(book, VectorQuantizer) and book.n_codes_ == 8
    out = tmp_path / "out"
    args = ["encode", str(photo_dir), "-o", str(out), "--codebook", str(book_path)]
    assert main(args) == EXIT_OK
    palettes = set()
    for path in sorted(out.iterdir()):
        with (
            Image.open(path) as image,
            Image.open(photo_dir / f"{path.stem}.png") as src,
        ):
            palettes.add(bytes(image.getpalette()[:24]))
            pixels = np.asarray(src).reshape(-1, 3)
            codes = np.asarray(image).reshape(-1, 1)
            np.testing.assert_array_equal(codes, book.transform(pixels))
    assert len(palettes) == 1  # one codebook for the whole collection


def _pixels_of(photo_dir):
    images = []
    for path in sorted(photo_dir.iterdir()):
        with Image.open(path) as image:
            images.append(np.asarray(image).reshape(-1, 3))
    return np.concatenate(images)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_fit_codebook_equals_fitting_all_pixels(tmp_path, photo_dir, jobs):
    book_path = tmp_path / "book.joblib"
    args = ["fit-codebook", str(photo_dir), "-k", "8", "-o", str(book_path), "-j"]
    assert main([*args, jobs]) == EXIT_OK
    full = VectorQuantizer(8, random_state=0).fit(_pixels_of(photo_dir))
    book = joblib.load(book_path)
    np.testing.assert_array_equal(book.codebook_, full.codebook_)
    assert book.inertia_ == full.inertia_


def test_cli_fit_codebook_writes_a_small_file_unless_asked_to_keep_the_stream(
    tmp_path, china
):
    # Issue 15: a finished codebook is a few KB, not the stream's histogram.
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(china).save(folder / "china.png")
    small, kept = tmp_path / "small.joblib", tmp_path / "kept.joblib"
    args = ["fit-codebook", str(folder), "-k", "16"]
    assert main([*args, "-o", str(small)]) == EXIT_OK
    assert main([*args, "-o", str(kept), "--keep-stream"]) == EXIT_OK
    assert small.stat().st_size < 5_000 < 500_000 < kept.stat().st_size
    np.testing.assert_array_equal(
        joblib.load(small).codebook_, joblib.load(kept).codebook_
    )
    # The kept stream goes on: more pixels give the fit of everything.
    more = china[::-1, ::3].reshape(-1, 3) // 2
    book = joblib.load(kept).partial_fit(more)
    full = fit_of_colors(
        np.concatenate([china.reshape(-1, 3), more]), 16, random_state=0
    )
    np.testing.assert_array_equal(book.codebook_, full.codebook_)


@pytest.fixture(params=["small", "large"])
def collection_size(request, monkeypatch):
    """A collection fit as one of a few pixels ("small", fitted on its pixels
    in order) or of many ("large", on its histogram): the limit between the
    two is lowered to make the test's collections large."""
    from skvq._engine import kmeans

    if request.param == "large":
        monkeypatch.setattr(kmeans, "REPLAY_MAX_SAMPLES", 1_000)
    return request.param


@pytest.mark.parametrize(
    "form", [lambda u: u, lambda u: u / 255, lambda u: u.astype(np.uint16) * 257]
)
def test_fit_codebook_of_arrays_equals_fit_on_the_concatenation(
    collection, form, collection_size
):
    from skvq.batch import fit_codebook

    images = [form(chunk) for chunk in collection]
    # Images as (height, width, channels) arrays too.
    images[0] = images[0].reshape(10, -1, 3)
    seen = []
    # A generator: its arrays are seen once, and kept only while few.
    book = fit_codebook(
        iter(images), 12, random_state=1, n_jobs=2, progress=seen.append
    )
    pixels = np.concatenate([image.reshape(-1, 3) for image in images])
    full = VectorQuantizer(12, random_state=1).fit(pixels)
    # One report per image, with its number of pixels.
    assert sorted(seen) == sorted(image.size // 3 for image in images)
    np.testing.assert_array_equal(book.codebook_, full.codebook_)
    assert book.inertia_ == pytest.approx(full.inertia_, rel=1e-12)


def test_a_small_collection_is_fitted_on_its_pixels_in_order(collection):
    # KMeans's seeds are drawn over the pixels in order: the order of the
    # images matters, and is that of the concatenation.
    from skvq.batch import fit_codebook

    books = [
        fit_codebook(images, 12, random_state=1).codebook_
        for images in (collection, collection[::-1])
    ]
    assert not np.array_equal(*books)
    full = VectorQuantizer(12, random_state=1).fit(np.concatenate(collection[::-1]))
    np.testing.assert_array_equal(books[1], full.codebook_)


def test_fit_codebook_keeps_the_stream_of_a_small_collection(collection):
    from skvq.batch import fit_codebook

    book = fit_codebook(collection[:2], 12, random_state=1, keep_stream=True)
    full = VectorQuantizer(12, random_state=1).fit(np.concatenate(collection[:2]))
    np.testing.assert_array_equal(book.codebook_, full.codebook_)
    # The stream goes on from the collection's histogram.
    book.partial_fit(collection[2])
    np.testing.assert_array_equal(
        book.codebook_,
        fit_of_colors(np.concatenate(collection[:3]), 12, random_state=1).codebook_,
    )


def test_fit_codebook_on_a_dask_cluster_equals_fit_on_the_concatenation(
    photo_dir, joblib_on_dask, collection_size
):
    from skvq.batch import fit_codebook

    paths = sorted(photo_dir.iterdir())
    cluster = dict(n_workers=1, threads_per_worker=2, processes=False)
    with joblib_on_dask(**cluster) as (_, tasks):
        book = fit_codebook(paths, 8, random_state=0)
    # The histograms (and a small collection's pixels) were read by tasks on
    # the cluster.
    assert len(tasks.data) >= len(paths) * (2 if collection_size == "small" else 1)
    full = VectorQuantizer(8, random_state=0).fit(_pixels_of(photo_dir))
    np.testing.assert_array_equal(book.codebook_, full.codebook_)


def test_fit_codebook_rejects_images_of_different_channels():
    from skvq.batch import fit_codebook

    rgb, rgba = np.zeros((10, 3), np.uint8), np.zeros((10, 4), np.uint8)
    with pytest.raises(ValueError, match="the images have 3 and 4 channels"):
        fit_codebook([rgb, rgba], 4, n_jobs=1)


def test_fit_codebook_names_a_file_it_cannot_read(tmp_path, photo_dir):
    from skvq.batch import fit_codebook

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"bad\.png: "):
        fit_codebook([*sorted(photo_dir.iterdir()), bad], 4)


def test_cli_rejects_a_file_that_is_not_a_codebook(tmp_path, photo_dir, capsys):
    not_a_book = tmp_path / "book.joblib"
    joblib.dump({"codebook": [1, 2, 3]}, not_a_book)
    args = ["encode", str(photo_dir), "-o", str(tmp_path / "o"), "--codebook"]
    assert main([*args, str(not_a_book)]) == EXIT_FAILED
    assert "not a codebook file (holds a dict" in capsys.readouterr().err
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"\x00garbage")
    assert main([*args, str(garbage)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"skvq: error: {garbage}: ") and "Traceback" not in err


def test_cli_fit_codebook_does_not_overwrite(tmp_path, photo_dir, capsys):
    book_path = tmp_path / "book.joblib"
    book_path.write_bytes(b"old")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        status = main(["fit-codebook", str(photo_dir), "-o", str(book_path)])
    assert status == EXIT_FAILED
    assert "already exists" in capsys.readouterr().err
    assert book_path.read_bytes() == b"old"
