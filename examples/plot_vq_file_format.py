"""
==============================================
Writing and reading .vq files with Pillow
==============================================

The bit count of a quantized image is not just arithmetic: the ``.vq`` file
format stores exactly the codebook and the packed codes, plus a small header.
Importing :mod:`skvq` registers the format with Pillow, so images are saved
and opened the usual way, with ``Image.save`` and ``Image.open``.
"""

# %%
# Saving
# ------
# The ``k`` option sets the number of colors; K-Means options such as
# ``random_state`` are passed through to :class:`~skvq.VectorQuantizer`.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_image

import skvq
from skvq.format import read_info
from skvq.metrics import psnr

china = load_sample_image("china.jpg")
out_dir = Path(tempfile.mkdtemp())
path = out_dir / "china.vq"
Image.fromarray(china).save(path, k=16, random_state=0)

# %%
# The file is the bit report made real: its size is the compressed size of
# the table, rounded up to whole bytes, plus a header of a few dozen bytes.
# :func:`~skvq.format.read_info` summarizes a file without decoding it.
info = read_info(path)
report = skvq.BitReport(n_samples=info.width * info.height, n_features=3, n_codes=16)
print(info)
table_bytes = (report.compressed_bits + 7) // 8
print(f"file: {path.stat().st_size:,} bytes; table: {table_bytes:,} bytes")
report

# %%
# Opening
# -------
# A .vq file with up to 256 colors opens as a palette ("P") image: the pixel
# values are the codes and the palette is the codebook.
with Image.open(path) as image:
    print(image.format, image.mode, image.size)
    codes = np.asarray(image)
    palette = np.array(image.getpalette()).reshape(-1, 3)
    decoded = np.asarray(image.convert("RGB"))

print(f"codes {codes.shape}, values 0..{codes.max()}; palette {palette.shape}")
print(f"PSNR against the original: {psnr(china, decoded):.2f} dB")

# %%
# The decoded image is the reconstruction :func:`~skvq.quantize_image` computes
# with the same options: the file loses nothing beyond the quantization.
result = skvq.quantize_image(china, 16, random_state=0)
print("identical to quantize_image:", np.array_equal(decoded, result.reconstruction))

# %%
# The picture and its palette, sorted by brightness:
order = np.argsort(palette.sum(axis=1))
fig, (ax_image, ax_palette) = plt.subplots(
    2, 1, figsize=(6, 4.8), height_ratios=[6, 1], layout="constrained"
)
ax_image.imshow(decoded)
ax_image.set_title(f"{path.name}: {info.bits_per_pixel:.2f} bits per pixel on disk")
ax_palette.imshow(palette[order][np.newaxis].astype(np.uint8), aspect="auto")
ax_palette.set_title("palette (the codebook)", fontsize="medium")
for ax in (ax_image, ax_palette):
    ax.set_axis_off()
plt.show()

# %%
# The temporary file is no longer needed.
path.unlink()
out_dir.rmdir()
