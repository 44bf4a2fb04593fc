"""
=====================================================
Choosing the smallest K that reaches a target PSNR
=====================================================

More colors always reduce the distortion, so a grid search that maximizes
quality alone always picks the largest K. What one usually wants is the
cheapest codebook that is good enough: the smallest K whose reconstruction
reaches a target PSNR.

This example puts :class:`~skvq.VectorQuantizer` in a scikit-learn
:class:`~sklearn.pipeline.Pipeline`, cross-validates it over K with two
scorers (PSNR and bits per pixel), and lets
:func:`~skvq.metrics.smallest_k_reaching` choose K in ``GridSearchCV``.
"""

# %%
# Pixels as a dataset
# -------------------
# Cross-validation holds out pixels: the codebook is fitted on some pixels and
# scored on others, which measures how well the colors generalize across the
# image. A random sample of the photo's pixels keeps the search fast.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_image
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from skvq import VectorQuantizer
from skvq.metrics import (
    neg_bits_per_pixel_scorer,
    psnr,
    psnr_scorer,
    smallest_k_reaching,
)

china = load_sample_image("china.jpg")
pixels = china.reshape(-1, 3)
rng = np.random.default_rng(0)
sample = pixels[rng.choice(len(pixels), size=10_000, replace=False)]

# %%
# Searching over K
# ----------------
# Preprocessing steps (a color space conversion, say) would go in front of
# ``"vq"``; the scorers measure PSNR on what the quantizer sees. The refit
# callable reads the cross-validated PSNR of each candidate and returns the
# index of the smallest K reaching 26 dB.
target_psnr = 26.0
pipeline = Pipeline([("vq", VectorQuantizer(random_state=0))])
search = GridSearchCV(
    pipeline,
    param_grid={"vq__n_clusters": [2, 4, 8, 16, 32]},
    scoring={"psnr": psnr_scorer, "bpp": neg_bits_per_pixel_scorer},
    refit=smallest_k_reaching(target_psnr),
    cv=KFold(n_splits=3, shuffle=True, random_state=0),
)
search.fit(sample)
print(f"chosen: {search.best_params_}")

# %%
# The cross-validation results
# ----------------------------
# ``cv_results_`` holds both scores for every K; the bits-per-pixel scorer is
# negated so that higher is better, as scikit-learn expects.
ks = np.array(search.cv_results_["param_vq__n_clusters"], dtype=int)
mean_psnr = search.cv_results_["mean_test_psnr"]
mean_bits = -search.cv_results_["mean_test_bpp"]
for k, quality, bits in zip(ks, mean_psnr, mean_bits, strict=True):
    print(f"K = {k:2d}: {quality:5.2f} dB, {bits:.2f} bits per pixel")

# %%
# PSNR against bits per pixel, the candidates labeled with their K. The
# chosen K is the leftmost point above the target line.
fig, ax = plt.subplots()
ax.plot(mean_bits, mean_psnr, "o-")
for k, bits, quality in zip(ks, mean_bits, mean_psnr, strict=True):
    ax.annotate(
        f"K = {k}", (bits, quality), textcoords="offset points", xytext=(6, -12)
    )
ax.axhline(target_psnr, color="C3", linestyle="--", label=f"target {target_psnr} dB")
best = search.best_index_
ax.plot(mean_bits[best], mean_psnr[best], "o", color="C3", markersize=12, alpha=0.5)
ax.set_xlabel("Bits per pixel (cross-validated)")
ax.set_ylabel("PSNR (dB, cross-validated)")
ax.legend(loc="lower right")
plt.show()

# %%
# Using the chosen quantizer
# --------------------------
# With a refit callable, ``best_estimator_`` is the pipeline refitted on the
# whole sample with the chosen K. It encodes every pixel of the photo, and the
# PSNR on the full image is close to the cross-validated estimate.
best_pipeline = search.best_estimator_
codes = best_pipeline.transform(pixels)
reconstruction = np.rint(best_pipeline.inverse_transform(codes)).astype(np.uint8)
print(f"PSNR on the whole photo: {psnr(pixels, reconstruction):.2f} dB")
best_pipeline["vq"].bit_report(n_samples=len(pixels))
