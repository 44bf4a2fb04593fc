"""The ``skvq`` command line."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]

_SAMPLE_IMAGES = ("china.jpg", "flower.jpg")


def _demo(args) -> int:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from .image import quantize_image
    from .metrics import psnr

    original = load_sample_image(args.image)
    result = quantize_image(original, args.k, random_state=args.random_state)
    print(f"{args.image} quantized to K = {args.k} colors")
    print(result.report)
    print(f"PSNR: {psnr(original, result.reconstruction):.2f} dB")
    Image.fromarray(result.reconstruction).save(args.output)
    print(f"wrote {args.output}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skvq",
        description="Image compression by K-Means vector quantization.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="quantize one of scikit-learn's sample photos (no download)",
        description="Quantize a scikit-learn sample photo, print the bit table "
        "and write the reconstruction.",
    )
    demo.add_argument("-k", type=int, default=16, help="number of colors (default 16)")
    demo.add_argument(
        "--image", choices=_SAMPLE_IMAGES, default="china.jpg", help="sample photo"
    )
    demo.add_argument("-o", "--output", default="china-k16.png", help="output image")
    demo.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv=None) -> int:
    """Run the ``skvq`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit code.
    """
    args = _build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
