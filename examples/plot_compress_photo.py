"""
=================================================
Compressing a photo with K-Means, step by step
=================================================

A color photo stores 24 bits per pixel: 8 for each of red, green and blue.
Vector quantization keeps only ``K`` representative colors (a *codebook*)
and stores, for every pixel, the index of its nearest codebook color. K-Means
chooses the colors that minimize the squared error of that substitution.

This example walks through the whole process on scikit-learn's sample photo:
the pixels as a dataset, the fitted codebook, the exact bit count, the
reconstruction at K = 2, 3, 6 and 16, and the trade-off between size and
quality as K grows.
"""

# %%
# The pixels are the samples
# --------------------------
# An image of shape ``(height, width, 3)`` is ``height * width`` samples with
# three features each. Reshaping it is all the preprocessing K-Means needs.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_image

from skvq import BitReport, VectorQuantizer, quantize_image
from skvq.display import compare
from skvq.metrics import psnr
from skvq.plotting import RateDistortionDisplay, plot_k_grid

china = load_sample_image("china.jpg")
pixels = china.reshape(-1, 3)
print(f"image {china.shape}, {china.dtype} -> pixels {pixels.shape}")

# %%
# Learning a codebook
# -------------------
# :class:`~skvq.VectorQuantizer` is a scikit-learn transformer: ``fit`` runs
# Lloyd's algorithm (k-means++ seeding), ``transform`` encodes each pixel as a
# code and ``inverse_transform`` decodes codes back to colors.
vq = VectorQuantizer(n_clusters=16, random_state=0).fit(pixels)
codes = vq.transform(pixels)
print(f"codebook {vq.codebook_.shape}, codes {codes.shape} of {codes.dtype}")
print("first codebook colors:\n", vq.codebook_[:3].round(1))

# %%
# Decoding looks each code up in the codebook. Colors are stored as 8-bit
# values, so round the centroids to the nearest integer (truncating them
# would darken the image slightly).
decoded = np.rint(vq.inverse_transform(codes)).astype(np.uint8)
reconstruction = decoded.reshape(china.shape)
print(f"PSNR at K = 16: {psnr(china, reconstruction):.2f} dB")

# %%
# Counting the bits
# -----------------
# With K colors each code needs ``ceil(log2 K)`` bits, and the codebook adds
# ``K * 3 * 8`` bits. :class:`~skvq.BitReport` does the arithmetic exactly.
# The classic worked example, a 100 x 100 RGB image with 16 colors:
print(BitReport(n_samples=100 * 100, n_features=3, n_codes=16))

# %%
# A 227 x 303 image with only two colors needs one bit per pixel, about 4 % of
# its original size:
print(BitReport(n_samples=227 * 303, n_features=3, n_codes=2))

# %%
# The same table for the photo and the codebook fitted above. In Jupyter a
# report displays as an HTML table:
vq.bit_report(n_samples=len(pixels))

# %%
# One call does it all
# --------------------
# :func:`~skvq.quantize_image` fits, encodes and decodes an image in one step
# and returns the reconstruction, the label map, the codebook and the report.
# In Jupyter the result shows the reconstruction next to its table.
result = quantize_image(china, n_clusters=2, random_state=0)
result

# %%
# Side by side with the original, two colors split the photo into a dark and
# a light region:
plot_k_grid(china, (2,), include_original=True, random_state=0)
plt.show()

# %%
# More colors, better pictures
# ----------------------------
# The figure below reconstructs the photo with K = 2, 3, 6 and 16 colors.
# Each title gives the PSNR (higher is closer to the original) and the bits
# per pixel, codebook included.
plot_k_grid(china, (2, 3, 6, 16), random_state=0)
plt.show()

# %%
# Quantization artifacts are easiest to judge at full resolution. In Jupyter,
# :func:`~skvq.display.compare` shows images side by side, here a crop of the
# roof at K = 6 and 16 (:func:`~skvq.display.compare_k` does the quantizing
# for you).
roof = china[40:200, 120:360]
compare(
    roof,
    quantize_image(roof, 6, random_state=0),
    quantize_image(roof, 16, random_state=0),
    width=240,
)

# %%
# The rate-distortion trade-off
# -----------------------------
# Doubling K costs one more bit per pixel and buys a few decibels: the gain
# per bit shrinks as K grows. :class:`~skvq.plotting.RateDistortionDisplay`
# draws both curves against K.
RateDistortionDisplay.from_image(
    china, (2, 4, 8, 16, 32), random_state=0, name="china.jpg"
)
plt.show()
