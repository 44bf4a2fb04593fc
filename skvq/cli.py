"""The ``skvq`` command line: encode, decode and inspect .vq files.

Exit codes: 0 success; 1 a file or the command failed (each failure is one
line on stderr); 2 bad usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_SAMPLE_IMAGES = ("china.jpg", "flower.jpg")
# Single-file work longer than this reports progress on a terminal.
_QUIET_SECONDS = 2.0


class CommandError(Exception):
    """A failure reported as one line on stderr, without a traceback."""


def _single_or_batch(args, suffix):
    """(source, target) pairs from ``IN OUT`` or ``IN... -o OUTDIR``."""
    from .batch import expand_inputs, plan_outputs

    if args.output_dir is None:
        if len(args.inputs) != 2:
            raise CommandError(
                "give one input and one output file, or inputs with -o OUTDIR"
            )
        return [tuple(args.inputs)]
    try:
        plan = plan_outputs(expand_inputs(args.inputs), args.output_dir, suffix)
    except ValueError as error:
        raise CommandError(str(error)) from None
    os.makedirs(args.output_dir, exist_ok=True)
    return plan


def _run_batch(args, run, plan, description, verb, **kwargs):
    """Run a batch with a progress bar on a terminal; print failures and a summary.

    In batch mode (``-o OUTDIR``) without ``--force``, outputs that exist
    already are skipped, so an interrupted batch resumes where it stopped.
    """
    from tqdm.auto import tqdm

    from .batch import _remove_leftover_temporaries

    skipped = []
    if args.output_dir is not None and not args.force:
        skipped = [pair for pair in plan if os.path.lexists(pair[1])]
        plan = [pair for pair in plan if not os.path.lexists(pair[1])]
    # One file reports its own progress (_progress_of_one_file), not 0/1 files.
    show_bar = _on_terminal() and args.output_dir is not None
    with tqdm(
        total=len(plan), desc=description, unit="file", disable=not show_bar
    ) as bar:

        def progress(result):
            if not result.ok:
                bar.write(
                    f"skvq: error: {result.source}: {result.error}", file=sys.stderr
                )
            bar.update()

        try:
            results = run(plan, progress=progress, overwrite=args.force, **kwargs)
        except KeyboardInterrupt:
            _remove_leftover_temporaries(target for _, target in plan)
            raise
    failed = sum(not result.ok for result in results)
    summary = f"{len(plan) - failed} files {verb}"
    if failed:
        summary = f"{len(plan) - failed} of {len(plan)} files {verb}, {failed} failed"
    if skipped:
        summary += f", {len(skipped)} skipped (their output exists; --force overwrites)"
    if failed or skipped or len(plan) > 1:
        print(f"skvq: {summary}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


# -- commands ------------------------------------------------------------------


def _encode(args):
    from .batch import encode_files

    target = _target_options(args)
    options = {"k": args.k, "random_state": args.random_state, "mode": args.mode}
    if target:  # the target chooses k
        options = {**target, "random_state": args.random_state, "mode": args.mode}
    options.update(dither=args.dither, color_space=args.color_space)
    if args.coding is not None:
        options["coding"] = args.coding
    if args.codebook is not None:
        options["codebook"] = _load_codebook(args.codebook)
    plan = _single_or_batch(args, ".vq")
    with _progress_of_one_file(args):
        return _run_batch(
            args, encode_files, plan, "encoding", "encoded", n_jobs=args.jobs, **options
        )


def _decode(args):
    from .batch import decode_files

    plan = _single_or_batch(args, "." + args.to.lstrip("."))
    return _run_batch(args, decode_files, plan, "decoding", "decoded", n_jobs=args.jobs)


def _target_options(args):
    """``psnr`` or ``max_bytes`` (instead of ``k``) from --psnr or --max-size."""
    target = {}
    if args.psnr is not None:
        target["psnr"] = args.psnr
    if args.max_size is not None:
        target["max_bytes"] = args.max_size
    if target and args.codebook is not None:
        flag = "--psnr" if args.psnr is not None else "--max-size"
        raise CommandError(
            f"--codebook and {flag} contradict each other: {flag} fits a codebook "
            "of its own; give one of them"
        )
    return target


def _load_codebook(path):
    import joblib

    from .quantizer import VectorQuantizer

    try:
        quantizer = joblib.load(path)
    except FileNotFoundError:
        raise CommandError(f"{path}: no such codebook file") from None
    except Exception:  # unpickling fails in many ways on a wrong file
        quantizer = None
    if quantizer is None:
        raise CommandError(
            f"{path}: not a codebook file{_what_it_is(path)}; make one with "
            "'skvq fit-codebook'"
        )
    if not isinstance(quantizer, VectorQuantizer):
        raise CommandError(
            f"{path}: not a codebook file (holds a {type(quantizer).__name__}, "
            "not a fitted skvq.VectorQuantizer)"
        )
    return quantizer


def _what_it_is(path):
    """`` (it is a PNG image)`` when Pillow recognizes the file, else ``""``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return f" (it is a {image.format} image)"
    except (OSError, UnidentifiedImageError):
        return ""


def _fit_codebook(args):
    import joblib
    from tqdm.auto import tqdm

    from ._atomic import atomic_write
    from .batch import _fit_collection, expand_inputs

    try:
        inputs = expand_inputs(args.inputs)
    except ValueError as error:
        raise CommandError(str(error)) from None
    with tqdm(
        total=len(inputs), desc="histograms", unit="file", disable=not _on_terminal()
    ) as bar:
        try:
            quantizer, n_samples = _fit_collection(
                inputs,
                args.k,
                mode=args.mode,
                keep_stream=args.keep_stream,
                n_jobs=args.jobs,
                progress=lambda _: bar.update(),
                random_state=args.random_state,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
    with atomic_write(args.output, overwrite=args.force) as fp:
        joblib.dump(quantizer, fp)
    print(
        f"fitted K = {quantizer.n_codes_:,} {args.mode} colors on {len(inputs)} "
        f"images ({n_samples:,.0f} pixels); wrote {args.output}"
    )
    return EXIT_OK


def _on_terminal():
    return sys.stderr.isatty()


def _progress_of_one_file(args):
    """Progress lines on stderr while one file is encoded (batches have a bar).

    ``-v`` reports each stage of the fit, ``-vv`` each step within them. On
    a terminal without ``-v``, work that takes longer than
    ``_QUIET_SECONDS`` reports its stages and, at most every
    ``_QUIET_SECONDS``, its steps: quick encodes stay silent, long ones
    show they are alive.
    """
    from ._engine import progress

    if args.output_dir is not None:
        return progress.reporting(None)
    if args.verbose:
        return progress.reporting(_write_progress, args.verbose)
    if not _on_terminal():
        return progress.reporting(None)
    start = last = time.perf_counter()

    def write_when_slow(line, level):
        nonlocal last
        now = time.perf_counter()
        if now - start < _QUIET_SECONDS or (level > 1 and now - last < _QUIET_SECONDS):
            return
        last = now
        _write_progress(line, level)

    return progress.reporting(write_when_slow, 2)


def _write_progress(line, level):
    print(f"skvq: {line}", file=sys.stderr, flush=True)


def _info(args):
    from .batch import _describe_error
    from .bits import BitReport
    from .format import read_info

    status = EXIT_OK
    for path in args.files:
        try:
            info = read_info(path)
        except (OSError, ValueError) as error:
            print(f"skvq: error: {path}: {_describe_error(error)}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        n_pixels = info.width * info.height * info.n_frames
        report = BitReport(n_pixels, info.n_channels, info.n_codes)
        frames = f"{info.n_frames} frame{'s' if info.n_frames != 1 else ''}"
        print(f"{path}: {info.width} x {info.height} {info.mode}, {frames}")
        print(f"  codebook         K = {info.n_codes:,}, coding {info.coding}")
        print(f"  file size        {info.file_size:,} bytes")
        print(
            f"  bits per pixel   {info.file_size * 8 / n_pixels:.3f} stored "
            f"(whole file), {info.bits_per_code} = ceil(log2 K) as the tutorial counts"
        )
        print("  " + str(report).replace("\n", "\n  "))
    return status


def _demo(args):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from .imaging import quantize_image
    from .io import save
    from .metrics import psnr

    output = args.output or f"{Path(args.image).stem}-k{args.k}.png"
    original = load_sample_image(args.image)
    result = quantize_image(original, args.k, random_state=args.random_state)
    print(f"{args.image} quantized to K = {args.k} colors")
    print(result.report)
    print(f"PSNR: {psnr(original, result.reconstruction):.2f} dB")
    reconstruction = Image.fromarray(result.reconstruction)
    save(reconstruction, output, overwrite=True)
    print(f"wrote {output} (the reconstruction)")
    # The compressed file itself, with the codebook just fitted.
    compressed = str(Path(output).with_suffix(".vq"))
    save(
        Image.fromarray(original), compressed, overwrite=True, codebook=result.quantizer
    )
    size = os.path.getsize(compressed)
    bits_per_pixel = 8 * size / result.report.n_samples
    print(f"wrote {compressed} ({size:,} bytes, {bits_per_pixel:.2f} bits per pixel)")
    return EXIT_OK


# -- argument parsing ----------------------------------------------------------


def _version():
    from . import __version__

    return __version__


def _number_of_colors(text):
    """K for -k: checked while parsing, so a bad K is a usage error (exit 2)."""
    from .format import MAX_CODES

    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= MAX_CODES:
        raise argparse.ArgumentTypeError(
            f"expected a number of colors from 1 to {MAX_CODES:,}, got {text!r}"
        )
    return value


def _decibels(text):
    """A PSNR for --psnr, in dB: checked while parsing (a usage error)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a PSNR in dB, a positive number such as 38, got {text!r}"
        )
    return value


# Units of --max-size: decimal (k = 1,000 bytes, as file managers count) and
# binary (KiB = 1,024 bytes).
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}


def _byte_size(text):
    """A file size for --max-size: 50000, 100k, 1.5M, 64KiB (a usage error if bad)."""
    number = text.strip().rstrip("bBiIkKmMgG")
    unit = text.strip()[len(number) :].lower()
    try:
        value = float(number) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        value = None
    if value is None or not 1 <= value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a file size such as 50000, 100k, 1.5M or 64KiB, got {text!r}"
        )
    return int(value)


def _jobs(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of parallel jobs (-1 for all cores), got {text!r}"
        ) from None


def _dither_method(text):
    from .encoder import dither_method

    try:
        return dither_method(text)
    except ValueError as error:
        # "--dither photo.png out.vq" takes the input for a method.
        raise argparse.ArgumentTypeError(
            f"{error} For the best method, put --dither after the files or "
            "write --dither=METHOD."
        ) from None


def _add_batch_arguments(parser, what):
    parser.add_argument(
        "-o",
        "--output-dir",
        metavar="OUTDIR",
        help=f"write one {what} per input into OUTDIR (batch mode)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=1,
        help="files processed in parallel (joblib; -1 for all cores; default 1)",
    )
    parser.add_argument(
        "-f", "--force", action="store_true", help="overwrite existing outputs"
    )


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skvq",
        description="Image compression by K-Means vector quantization.",
        epilog="Exit codes: 0 success, 1 failure, 2 bad usage, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    encode = commands.add_parser(
        "encode",
        help="compress images to .vq files",
        description="Compress images (any format Pillow reads) to .vq files: "
        "'skvq encode IN OUT.vq' or 'skvq encode DIR_OR_GLOB... -o OUTDIR'.",
    )
    encode.add_argument("inputs", nargs="+", metavar="INPUT", help="images")
    colors = encode.add_mutually_exclusive_group()
    colors.add_argument(
        "-k", type=_number_of_colors, default=16, help="number of colors (default 16)"
    )
    colors.add_argument(
        "--psnr",
        type=_decibels,
        metavar="DB",
        help="instead of -k: the fewest colors whose stored image (dithered with "
        "--dither) reaches this PSNR in dB, e.g. 38",
    )
    colors.add_argument(
        "--max-size",
        type=_byte_size,
        metavar="SIZE",
        help="instead of -k: the most colors whose file fits in SIZE bytes "
        "(100k = 100,000 bytes, 64KiB = 65,536)",
    )
    encode.add_argument(
        "--random-state", type=int, default=0, help="K-Means seed (default 0)"
    )
    encode.add_argument(
        "--coding", help="index coding: auto (default), raw, zstd, bz2, context"
    )
    encode.add_argument(
        "--mode",
        choices=("RGB", "RGBA", "L", "LA"),
        help="convert images to this color mode first (for CMYK, 16-bit, ...); "
        "by default images keep theirs",
    )
    encode.add_argument(
        "--codebook",
        metavar="BOOK",
        help="use the codebook in BOOK (from 'skvq fit-codebook') instead of "
        "fitting one per image; -k is then ignored. Load only files you trust: "
        "they are joblib pickles",
    )
    encode.add_argument(
        "--dither",
        nargs="?",
        const=True,
        default=False,
        type=_dither_method,
        metavar="METHOD",
        help="diffuse each pixel's color error over its neighbors: smoother "
        "gradients, no banding, for a lower PSNR; METHOD names a method (the "
        "best one without it; write --dither=METHOD, or --dither after the "
        "files). The codebook is fitted again to the dithered picture",
    )
    encode.add_argument(
        "--color-space",
        choices=("rgb", "oklab"),
        default="rgb",
        help="where colors are fitted and matched: rgb, the pixel values "
        "(default), or oklab, where distances follow perceived differences; "
        "files store sRGB colors either way",
    )
    encode.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="report the stages of one file's encoding on stderr (-vv: every "
        "step); on a terminal they show anyway once it takes a while "
        "(batches show a progress bar instead)",
    )
    _add_batch_arguments(encode, ".vq file")
    encode.set_defaults(run=_encode)

    decode = commands.add_parser(
        "decode",
        help="decompress .vq files to ordinary images",
        description="Decompress .vq files: 'skvq decode IN.vq OUT.png' or "
        "'skvq decode DIR_OR_GLOB... -o OUTDIR --to png'.",
    )
    decode.add_argument("inputs", nargs="+", metavar="INPUT", help=".vq files")
    decode.add_argument(
        "--to", default="png", help="output extension in batch mode (default png)"
    )
    _add_batch_arguments(decode, "image")
    decode.set_defaults(run=_decode)

    fit = commands.add_parser(
        "fit-codebook",
        help="fit one codebook for a whole collection",
        description="Fit one codebook on all pixels of a collection of images "
        "(their color histograms are made in parallel and added up, then fitted "
        "once: the codebook of all pixels together) and save it with joblib for "
        "'skvq encode --codebook'.",
    )
    fit.add_argument("inputs", nargs="+", metavar="INPUT", help="images")
    fit.add_argument(
        "-k", type=_number_of_colors, default=256, help="number of colors (default 256)"
    )
    fit.add_argument(
        "-o", "--output", required=True, metavar="BOOK", help="codebook file to write"
    )
    fit.add_argument(
        "--mode",
        choices=("RGB", "RGBA", "L", "LA"),
        default="RGB",
        help="color mode the images are converted to (default RGB)",
    )
    fit.add_argument(
        "--random-state", type=int, default=0, help="K-Means seed (default 0)"
    )
    fit.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=1,
        help="images read in parallel (joblib; -1 for all cores; default 1)",
    )
    fit.add_argument(
        "--keep-stream",
        action="store_true",
        help="keep the collection's color histogram in BOOK, so that "
        "VectorQuantizer.partial_fit can add images later (a larger file)",
    )
    fit.add_argument(
        "-f", "--force", action="store_true", help="overwrite an existing BOOK"
    )
    fit.set_defaults(run=_fit_codebook)

    info = commands.add_parser(
        "info",
        help="show what a .vq file holds",
        description="Show size, mode, K, coding, the tutorial's bit table and "
        "the real bits per pixel of .vq files.",
    )
    info.add_argument("files", nargs="+", metavar="FILE", help=".vq files")
    info.set_defaults(run=_info)

    demo = commands.add_parser(
        "demo",
        help="quantize one of scikit-learn's sample photos (no download)",
        description="Quantize a scikit-learn sample photo, print the bit table "
        "and write the reconstruction.",
    )
    demo.add_argument(
        "-k", type=_number_of_colors, default=16, help="number of colors (default 16)"
    )
    demo.add_argument(
        "--image", choices=_SAMPLE_IMAGES, default="china.jpg", help="sample photo"
    )
    demo.add_argument(
        "-o",
        "--output",
        help="reconstruction to write, IMAGE-kK.png by default (china-k16.png); "
        "the .vq file goes beside it",
    )
    demo.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv=None):
    """Run the ``skvq`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit code: 0 success, 1 failure, 2 bad usage, 130 interrupted.
    """
    args = _build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        print(f"skvq: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (OSError, ValueError) as error:
        from .batch import _describe_error

        print(f"skvq: error: {_describe_error(error)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("skvq: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
