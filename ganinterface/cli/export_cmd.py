"""``ganinterface export``: assemble existing images into a contact sheet, a GIF, an MP4 or a PNG sequence.

No model is needed: the inputs are PNGs (files, or directories whose PNGs are taken in name order),
such as those ``apply-recipe`` or ``render`` wrote.  Example:
``ganinterface export out/ -o sheet.png --columns 10 --labels``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path


from ganinterface.cli import UserError, options
from ganinterface.cli.options import image_size, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="combine images into a contact sheet, GIF, MP4 or PNG sequence",
        description="Combine PNG images (files, or directories of PNGs taken in name order) into "
                    "a contact sheet (.png), a GIF, an MP4 (H.264) or a PNG sequence (a directory).")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE", help="PNG files or directories")
    parser.add_argument("-o", "--output", required=True,
                        help="sheet.png, anim.gif, anim.mp4, or frames_dir/ for a PNG sequence")
    parser.add_argument("--columns", type=positive_int, default=None,
                        help="contact sheet: images per row (default: a near-square grid)")
    parser.add_argument("--gap", type=int, default=2, help="contact sheet: pixels between images")
    parser.add_argument("--labels", action="store_true",
                        help="contact sheet: write each file's name under its image")
    parser.add_argument("--fps", type=positive_float, default=12.0, help="GIF/MP4 frame rate (default 12)")
    parser.add_argument("--size", type=image_size, default=None, metavar="WxH",
                        help="resize every image first, e.g. 256x128")
    parser.add_argument("--resample", choices=("nearest", "lanczos"), default="nearest",
                        help="how --size resizes (default nearest: pixel-exact enlargements)")
    options.add_quiet(parser)
    parser.set_defaults(handler=_export)


def input_files(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            found = sorted(p for p in entry.iterdir() if p.suffix.lower() == ".png" and p.is_file())
            if not found:
                raise UserError(f"{entry}: this directory has no .png images")
            files.extend(found)
        elif entry.is_file():
            files.append(entry)
        else:
            raise UserError(f"{entry}: no such file or directory")
    return files


def _export(args: argparse.Namespace) -> int:
    from ganinterface.export.animation import export_frames, format_for_path
    from ganinterface.export.images import contact_sheet, resize
    from ganinterface.export.progress import TqdmProgress
    from ganinterface.export.userfiles import (check_writable, make_folder_for, read_image, write_png,
                                               writing)

    try:
        fmt = format_for_path(args.output)
    except ValueError as error:
        raise UserError(str(error)) from None
    if args.gap < 0:
        raise UserError(f"--gap must be 0 or more, got {args.gap}")
    check_writable(args.output, folder=fmt == "png-seq")
    files = input_files(args.inputs)
    frames = []
    for path in files:
        image = read_image(path)
        if args.size is not None:
            image = resize(image, args.size[0], args.size[1], args.resample)
        if frames and image.shape != frames[0].shape:
            raise UserError(f"{path} is {image.shape[1]} × {image.shape[0]} px but {files[0]} is "
                            f"{frames[0].shape[1]} × {frames[0].shape[0]} px; pass --size to resize all")
        frames.append(image)
    make_folder_for(args.output)
    if fmt == "strip":
        columns = args.columns or math.ceil(math.sqrt(len(frames)))
        labels = [path.stem for path in files] if args.labels else None
        write_png(args.output, contact_sheet(frames, columns=columns, gap=args.gap, labels=labels))
        options.report(args, [f"wrote {args.output} (a contact sheet of {len(frames)} images, "
                              f"{columns} a row)"])
        return 0
    with TqdmProgress("export", unit="frame", total=len(frames), disable=args.quiet) as progress, \
            writing(args.output):
        try:
            path = export_frames(frames, args.output, fmt, fps=args.fps, progress=progress)
        except ValueError as error:  # e.g. a GIF faster than 50 fps
            raise UserError(str(error)) from None
    options.report(args, options.animation_lines(path, fmt, len(frames), args.fps))
    return 0
