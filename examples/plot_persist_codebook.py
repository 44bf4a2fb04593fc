"""
==============================================
Saving a codebook and reusing it on new images
==============================================

A fitted :class:`~skvq.VectorQuantizer` is an ordinary scikit-learn
estimator: it can be saved with :mod:`joblib` and loaded later to encode
images it has never seen. A codebook shared by many images is stored once
instead of once per image, at the price of colors that fit each image less
well than its own codebook would.

Here a codebook learned on one sample photo is saved, loaded back, and used
on the other.
"""

# %%
# Fit and save
# ------------
import tempfile
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_image

from skvq import VectorQuantizer, quantize_image
from skvq.metrics import psnr

china = load_sample_image("china.jpg")
flower = load_sample_image("flower.jpg")

vq = VectorQuantizer(n_clusters=32, random_state=0).fit(china.reshape(-1, 3))

model_dir = Path(tempfile.mkdtemp())
model_path = model_dir / "china-k32.joblib"
joblib.dump(vq, model_path)
print(f"saved {model_path.name}: {model_path.stat().st_size:,} bytes")

# %%
# Load and encode another image
# -----------------------------
# The loaded estimator has the same codebook and encodes any RGB image; the
# codes take the shape of the pixels back.
loaded = joblib.load(model_path)
np.testing.assert_array_equal(loaded.codebook_, vq.codebook_)

flower_pixels = flower.reshape(-1, 3)
codes = loaded.transform(flower_pixels)
shared = np.rint(loaded.inverse_transform(codes)).astype(np.uint8).reshape(flower.shape)

# %%
# Only the codes of the new image need storing; the codebook is already known
# to whoever holds the model file.
report = loaded.bit_report(n_samples=len(flower_pixels))
print(f"codes only: {report.index_bits:,} bits, {report.bits_per_code} per pixel")

# %%
# Shared codebook versus a codebook of its own
# --------------------------------------------
# The photo of a pagoda has few of the flower's oranges and teals, so the
# shared codebook renders them with the nearest colors it has. A codebook
# fitted on the flower itself does better, and costs its own 32 colors.
own = quantize_image(flower, n_clusters=32, random_state=0)
panels = {
    "Original flower": flower,
    f"china.jpg codebook: {psnr(flower, shared):.2f} dB": shared,
    f"own codebook: {psnr(flower, own.reconstruction):.2f} dB": own.reconstruction,
}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.1), layout="constrained")
for ax, (title, image) in zip(axes, panels.items(), strict=True):
    ax.imshow(image)
    ax.set_title(title)
    ax.set_axis_off()
plt.show()

# %%
# Both codebooks, one swatch per color, sorted by brightness:
fig, axes = plt.subplots(2, 1, figsize=(8, 1.6), layout="constrained")
for ax, (name, codebook) in zip(
    axes, [("china.jpg", loaded.codebook_), ("flower.jpg", own.codebook)], strict=True
):
    order = np.argsort(codebook.sum(axis=1))
    ax.imshow(np.rint(codebook[order])[np.newaxis].astype(np.uint8), aspect="auto")
    ax.set_title(f"{name} codebook", fontsize="medium")
    ax.set_axis_off()
plt.show()

# %%
# The temporary model file is no longer needed.
model_path.unlink()
model_dir.rmdir()
