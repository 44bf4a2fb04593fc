"""
=====================================
Segmenting a photo in color space
=====================================

The codes of a quantized image are a label map: every pixel belongs to one
of K color clusters. That is a segmentation, but one made in color space
only. K-Means never sees where a pixel is, so a segment gathers every pixel
of a similar color wherever it lies, and one object can be split between
several segments.

This example looks at the segments of scikit-learn's sample photo, counts
how fragmented they are, and shows what changes when the pixel coordinates
are added as features.
"""

# %%
# Labels from the color clusters
# ------------------------------
# :func:`~skvq.segment_image` returns the label of each pixel, an array of
# shape ``(height, width)``.
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage
from sklearn.datasets import load_sample_image

from skvq import VectorQuantizer, quantize_image, segment_image

china = load_sample_image("china.jpg")
n_segments = 6
labels = segment_image(china, n_segments, random_state=0)
print(f"labels {labels.shape}, values {np.unique(labels)}")

fig, (ax_photo, ax_labels) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
ax_photo.imshow(china)
ax_photo.set_title("Original")
shown = ax_labels.imshow(labels, cmap="tab10", vmin=-0.5, vmax=9.5)
ax_labels.set_title(f"{n_segments} color segments")
fig.colorbar(shown, ax=ax_labels, ticks=range(n_segments), label="segment")
for ax in (ax_photo, ax_labels):
    ax.set_axis_off()
plt.show()

# %%
# One panel per segment
# ---------------------
# Drawing each segment as a mask (its pixels in black) makes the clusters
# visible: sky, water, foliage and roof tiles, each scattered over the whole
# picture. The codebook color of each segment is in the title.
result = quantize_image(china, n_segments, random_state=0)
fig, axes = plt.subplots(2, 3, figsize=(10, 5), layout="constrained")
for segment, ax in enumerate(axes.ravel()):
    mask = result.codes == segment
    red, green, blue = np.rint(result.codebook[segment]).astype(int)
    ax.imshow(mask, cmap="gray_r", interpolation="nearest")
    ax.set_title(
        f"segment {segment}: RGB ({red}, {green}, {blue}), {mask.mean():.0%}",
        fontsize="medium",
    )
    ax.set_axis_off()
plt.show()

# %%
# Segments are not regions
# ------------------------
# Counting the connected regions of each segment shows how fragmented a
# color segmentation is: thousands of pieces, most of them a few pixels.
for segment in range(n_segments):
    _, n_regions = ndimage.label(labels == segment)
    print(f"segment {segment}: {n_regions:5d} connected regions")

# %%
# Adding where the pixels are
# ---------------------------
# Appending each pixel's row and column to its color makes K-Means trade
# color similarity against distance. The weight of the coordinates decides
# the balance; with a weight of 0.5 a move of two pixels counts like a step of
# one color level. Segments become compact patches instead of scattered
# colors, at the cost of mixing colors inside a patch.
height, width, _ = china.shape
rows, cols = np.mgrid[:height, :width]
position_weight = 0.5
features = np.column_stack(
    [
        china.reshape(-1, 3),
        position_weight * rows.ravel(),
        position_weight * cols.ravel(),
    ]
)
spatial = VectorQuantizer(n_segments, random_state=0).fit(features)
spatial_labels = spatial.transform(features).reshape(height, width)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for ax, segmentation, title in zip(
    axes, (labels, spatial_labels), ("color only", "color and position"), strict=True
):
    ax.imshow(segmentation, cmap="tab10", vmin=-0.5, vmax=9.5)
    n_regions = sum(
        ndimage.label(segmentation == segment)[1] for segment in range(n_segments)
    )
    ax.set_title(f"{title}: {n_regions} regions")
    ax.set_axis_off()
plt.show()
