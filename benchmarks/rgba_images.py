"""Generated RGBA images with soft edges, for tests and benchmarks.

Sprites, a logo, anti-aliased text and a photo under a soft radial alpha
mask, as real RGBA images have them: fully transparent backgrounds (whose
invisible colors are noise, as some editors leave them), fully opaque
interiors and anti-aliased edges in between. No network: shapes are drawn
with Pillow at 4 times the size and reduced, text with Pillow's default
(FreeType) font, the photo is scikit-learn's sample.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_SUPERSAMPLING = 4


def _reduced(image: Image.Image, size) -> Image.Image:
    """Reduce a supersampled RGBA drawing, averaging premultiplied colors."""
    return image.convert("RGBa").resize(size, Image.Resampling.BOX).convert("RGBA")


def _noisy_transparent_background(image: Image.Image, seed: int) -> Image.Image:
    """The invisible colors of fully transparent pixels replaced by noise."""
    pixels = np.array(image)
    rng = np.random.default_rng(seed)
    transparent = pixels[..., 3] == 0
    pixels[transparent, :3] = rng.integers(0, 256, (transparent.sum(), 3))
    return Image.fromarray(pixels, "RGBA")


def sprites(size=(96, 96), seed=0) -> Image.Image:
    """Overlapping colored discs and a ring, anti-aliased, on transparency."""
    rng = np.random.default_rng(seed)
    big = tuple(_SUPERSAMPLING * side for side in size)
    canvas = Image.new("RGBA", big, (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for _ in range(7):
        x, y = rng.integers(0, big[0]), rng.integers(0, big[1])
        radius = rng.integers(big[0] // 12, big[0] // 5)
        color = (*map(int, rng.integers(0, 256, 3)), 255)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color)
    draw.ellipse(
        [big[0] // 4, big[1] // 4, 3 * big[0] // 4, 3 * big[1] // 4],
        outline=(250, 220, 40, 255),
        width=big[0] // 24,
    )
    return _noisy_transparent_background(_reduced(canvas, size), seed)


def logo(size=(160, 64), seed=1) -> Image.Image:
    """A gradient badge with a translucent shadow and lettering."""
    big = tuple(_SUPERSAMPLING * side for side in size)
    canvas = Image.new("RGBA", big, (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    w, h = big
    draw.rounded_rectangle(
        [w // 20 + 12, h // 8 + 12, w - w // 20 + 12, h - h // 8 + 12],
        radius=h // 4,
        fill=(0, 0, 0, 90),  # the shadow: translucent everywhere
    )
    for row in range(h // 8, h - h // 8):
        t = (row - h // 8) / (h * 3 / 4)
        color = (int(30 + 200 * t), int(90 + 60 * t), int(200 - 150 * t), 255)
        draw.line([(w // 20, row), (w - w // 20, row)], fill=color)
    mask = Image.new("L", big, 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        [w // 20, h // 8, w - w // 20, h - h // 8], radius=h // 4, fill=255
    )
    badge = Image.new("RGBA", big, (0, 0, 0, 0))
    badge.paste(canvas, mask=mask)
    shadow = canvas.copy()
    shadow.putalpha(Image.eval(canvas.getchannel("A"), lambda a: 90 if a == 90 else 0))
    combined = Image.alpha_composite(shadow, badge)
    font = ImageFont.load_default(size=h // 2)
    ImageDraw.Draw(combined).text(
        (w // 2, h // 2), "skvq", font=font, fill=(255, 255, 255, 255), anchor="mm"
    )
    return _noisy_transparent_background(_reduced(combined, size), seed)


def text(size=(240, 40), seed=2) -> Image.Image:
    """Dark anti-aliased text on transparency (FreeType's own smoothing)."""
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    font = ImageFont.load_default(size=size[1] // 2)
    ImageDraw.Draw(canvas).text(
        (4, size[1] // 2),
        "Vector quantization",
        font=font,
        fill=(20, 30, 90, 255),
        anchor="lm",
    )
    return _noisy_transparent_background(canvas, seed)


def vignetted_photo(size=(160, 107), seed=3) -> Image.Image:
    """scikit-learn's china.jpg under a soft radial alpha mask."""
    from sklearn.datasets import load_sample_image

    photo = Image.fromarray(load_sample_image("china.jpg")).resize(
        size, Image.Resampling.LANCZOS
    )
    y, x = np.mgrid[: size[1], : size[0]]
    r = np.hypot((x - size[0] / 2) / (size[0] / 2), (y - size[1] / 2) / (size[1] / 2))
    # Opaque in the middle, a soft ramp, transparent in the corners.
    alpha = np.clip((1.0 - r) / 0.45, 0, 1)
    photo.putalpha(Image.fromarray(np.rint(255 * alpha).astype(np.uint8)))
    return _noisy_transparent_background(photo, seed)


IMAGES = {
    "sprites": sprites,
    "logo": logo,
    "text": text,
    "vignetted photo": vignetted_photo,
}
