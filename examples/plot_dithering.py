"""
=========================================
Dithering: trading banding for fine grain
=========================================

With few colors, smooth areas break into visible bands: every pixel takes
its nearest codebook color, and a slow gradient becomes a staircase.
Dithering spreads each pixel's error to the pixels not yet coded, so that
areas keep their mean color and the bands dissolve into a fine grain the eye
averages away.

:mod:`skvq.dither` does it on skvq's exact nearest-color search. This
example quantizes a generated sky and a crop of a photo to 8 colors, then
compares, crop by crop, no dithering, textbook Floyd–Steinberg and skvq's
adaptive dithering (what ``dither=True`` means), with SSIMULACRA2 scores
(higher is better) when the ``ssimulacra2`` package is installed.
"""

# %%
# Two images, two palettes of 8 colors
# ------------------------------------
# A sky gradient with a sun bands badly; the photo has smooth walls and
# sky next to busy detail. Each gets an 8-color codebook from
# :func:`~skvq.quantize_image`, rounded to the 8-bit palette a file stores.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_image

from skvq import dither, quantize_image
from skvq.image import reconstruct


def sky(height=150, width=200):
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    sun = np.exp(-((x - 0.7) ** 2 + (y - 0.8) ** 2) / 0.02)[..., None]
    blue = (1 - y[..., None]) * [40, 90, 200] + y[..., None] * [170, 210, 240]
    return np.rint(blue * (1 - sun) + sun * [255, 240, 200]).astype(np.uint8)


images = {"sky": sky(), "china": load_sample_image("china.jpg")[:150, 250:450]}
k = 8
palettes = {}
for name, image in images.items():
    codebook = quantize_image(image, k, random_state=0).codebook
    palettes[name] = reconstruct(codebook, np.arange(k)[:, None])

# %%
# Three ways to map pixels to the palette
# ---------------------------------------
# ``dither_codes`` returns the code of every pixel. ``method=False`` is the
# nearest color; ``"floyd-steinberg"`` passes every error on whole; the
# adaptive method (the default) damps and bounds the error, which keeps
# isolated far colors ("specks") out of flat areas, and
# :func:`~skvq.dither.fit_palette` first fits the palette to how the
# dithered image looks (K-Means leaves gaps between colors that dithering
# turns into coarse grain), as ``dither=True`` does.


def render(image, palette, method):
    if method == "adaptive":
        palette = dither.fit_palette(image, palette, srgb=True)
    return palette[dither.dither_codes(image, palette, method=method)]


methods = {
    "nearest color": False,
    "Floyd–Steinberg": "floyd-steinberg",
    "adaptive": "adaptive",
}
results = {
    (name, label): render(image, palettes[name], method)
    for name, image in images.items()
    for label, method in methods.items()
}


def score(original, result):
    """SSIMULACRA2 if the package is installed (it reads files), else None."""
    try:
        from ssimulacra2 import compute_ssimulacra2
    except ImportError:
        return None
    import tempfile
    from pathlib import Path

    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(Path(tmp, f"{i}.png")) for i in range(2)]
        Image.fromarray(original).save(paths[0])
        Image.fromarray(result).save(paths[1])
        return compute_ssimulacra2(*paths)


# %%
# Side by side
# ------------
# Top: the bands of the nearest color turn into grain. Bottom: the same on a
# photo, where the adaptive method keeps the sky smooth without sprinkling
# the roof with stray colors.
fig, axes = plt.subplots(2, 4, figsize=(12, 4.6), layout="constrained")
for row, (name, image) in zip(axes, images.items(), strict=True):
    row[0].imshow(image)
    row[0].set_title(f"{name}: original")
    for ax, label in zip(row[1:], methods, strict=True):
        result = results[name, label]
        ssim2 = score(image, result)
        caption = f"{label}, K={k}"
        if ssim2 is not None:
            caption += f"\nSSIMULACRA2 {ssim2:.0f}"
        ax.imshow(result)
        ax.set_title(caption)
for ax in axes.flat:
    ax.set_axis_off()
plt.show()

# %%
# A closer look
# -------------
# Magnified 4x, a strip of the sky: steps, then grain.
strip = (slice(20, 60), slice(100, 160))
fig, axes = plt.subplots(1, 4, figsize=(12, 2.6), layout="constrained")
axes[0].imshow(images["sky"][strip], interpolation="nearest")
axes[0].set_title("original")
for ax, label in zip(axes[1:], methods, strict=True):
    ax.imshow(results["sky", label][strip], interpolation="nearest")
    ax.set_title(label)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %%
# Every pixel still holds one of the 8 colors, so the file stays a 3-bit
# index map; the grain costs some compression of the index runs. The
# :doc:`dithering page </dithering>` has the measurements next to
# libimagequant and Pillow.
