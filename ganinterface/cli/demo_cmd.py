"""``ganinterface demo-dataset`` and ``train-classifier``: the built-in portraits as data, and the
attribute classifier that measures generators trained on them."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ganinterface import bundled
from ganinterface.cli import UserError, options

LABELS_FILE = "labels.jsonl"
SHEET_TILES = 64
SHEET_COLUMNS = 8


def register(subparsers: argparse._SubParsersAction) -> None:
    dataset = subparsers.add_parser(
        "demo-dataset", help="write procedurally drawn portraits and their labels",
        description="Render COUNT portraits (seeds SEED, SEED+1, ...) as PNG files into OUT_DIR, "
                    f"with one JSON line of labels per image in OUT_DIR/{LABELS_FILE}.")
    dataset.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="directory to write into")
    dataset.add_argument("--count", type=int, default=1000, help="number of portraits (default 1000)")
    dataset.add_argument("--seed", type=int, default=0, help="seed of the first portrait (default 0)")
    dataset.add_argument("--size", default="128x64", help="HEIGHTxWIDTH, 2:1 (default 128x64)")
    dataset.add_argument("--sheet", type=Path, default=None, metavar="PNG",
                         help=f"also write a contact sheet of the first {SHEET_TILES} portraits "
                              "(and a Markdown caption beside it)")
    dataset.set_defaults(handler=_demo_dataset)

    classifier = subparsers.add_parser(
        "train-classifier", help="train the attribute classifier on fresh portraits (CPU)",
        description="Train the small CNN that reads mouth, hair band, colours and fringe from a "
                    "portrait, on freshly rendered portraits, and report held-out accuracy.")
    classifier.add_argument("--steps", type=int, default=None, help="optimiser steps")
    classifier.add_argument("--batch", type=int, default=None, help="images per step")
    classifier.add_argument("--out", type=Path, default=None,
                            help="weights file (default: the shipped checkpoints/attribute-classifier"
                                 ".safetensors); a JSON report is written beside it")
    classifier.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    classifier.set_defaults(handler=_train_classifier)


def parse_size(text: str) -> tuple[int, int]:
    """'128x64' -> (128, 64); the renderer draws 2:1 portraits only."""
    size = options.two_numbers(text)
    if size is None:
        raise UserError(f"--size {text!r}: expected HEIGHTxWIDTH, e.g. 128x64")
    height, width = size
    if width < 8 or height != 2 * width:
        raise UserError(f"--size {text}: portraits are 2:1 (height = 2 x width, width >= 8), e.g. 128x64")
    return height, width


def _demo_dataset(args: argparse.Namespace) -> int:
    from ganinterface.export.userfiles import check_writable

    height, width = parse_size(args.size)
    if args.count < 1:
        raise UserError(f"--count must be at least 1, got {args.count}")
    if args.seed < 0 or args.seed + args.count > 2**63:
        raise UserError(f"--seed must be between 0 and 2**63 - count, got {args.seed}")
    out_dir: Path = args.out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a directory")
    check_writable(out_dir, folder=True)
    if args.sheet is not None:
        check_writable(args.sheet)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        labels = write_dataset(out_dir, range(args.seed, args.seed + args.count), height, width)
        if args.sheet is not None:
            write_contact_sheet(args.sheet, labels[:SHEET_TILES], height, width)
    except OSError as error:
        raise UserError(f"{error.filename or out_dir}: {error.strerror or error}") from None
    logging.getLogger(__name__).info("wrote %d portraits to %s", len(labels), out_dir)
    return 0


def write_dataset(out_dir: Path, seeds: range, height: int, width: int) -> list[dict]:
    """PNG per seed (each written atomically) and labels.jsonl (written atomically at the end)."""
    import cv2
    from tqdm import tqdm

    from ganinterface.demo.portraits import render_portrait
    from ganinterface.atomic import atomic_write_bytes, atomic_write_text

    digits = max(6, len(str(seeds[-1])))
    all_labels = []
    for seed in tqdm(seeds, desc="portraits", unit="image", dynamic_ncols=True):
        image, labels = render_portrait(seed, height, width)
        name = f"portrait-{seed:0{digits}d}.png"
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"could not encode {name} as PNG")
        # no fsync per image: it costs more than drawing one, and a dataset can be redone
        atomic_write_bytes(out_dir / name, encoded.tobytes(), durable=False)
        all_labels.append({"file": name, **labels})
    atomic_write_text(out_dir / LABELS_FILE, "".join(json.dumps(l) + "\n" for l in all_labels))
    return all_labels


def write_contact_sheet(path: Path, labels: list[dict], height: int, width: int) -> None:
    """A grid of the given portraits, captioned 'open'/'shut' and the band colour, with a Markdown
    file beside it listing every tile's labels."""
    import numpy as np

    from ganinterface.demo.portraits import render_portrait
    from ganinterface.atomic import atomic_write_text
    from ganinterface.export.images import contact_sheet, save_png, upscale

    zoom = max(1, 128 // width)  # captions need tiles at least 128 pixels wide
    tiles = [upscale(render_portrait(l["seed"], height, width)[0], zoom, "nearest") for l in labels]
    captions = [f"{'open' if l['mouth_open'] else 'shut'} {l['hair_band_colour'] or '-'}" for l in labels]
    sheet = contact_sheet(np.stack(tiles), columns=SHEET_COLUMNS, labels=captions, background=(32, 32, 36))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(path, sheet)
    atomic_write_text(path.with_suffix(".md"), _sheet_caption(path.name, labels))


def _sheet_caption(sheet_name: str, labels: list[dict]) -> str:
    from ganinterface.demo import portraits

    lines = [
        f"# {sheet_name}: procedurally drawn portraits",
        "",
        f"Made with `ganinterface demo-dataset OUT --count {len(labels)} --seed {labels[0]['seed']} "
        f"--sheet docs/{sheet_name}`; tiles shown {SHEET_COLUMNS} per row, left to right, "
        "captioned with the mouth (open/shut) and the hair band colour (- for none).",
        "",
        "Distributions (module constants in `ganinterface/demo/portraits.py`): mouth open with "
        f"p = {portraits.P_MOUTH_OPEN} (openness uniform in {portraits.MOUTH_OPENNESS_RANGE}), "
        f"hair band with p = {portraits.P_HAIR_BAND} (colour uniform over those far enough from the "
        f"hair colour), uniform hair colour ({', '.join(portraits.HAIR_COLOURS)}), fringe "
        f"({', '.join(portraits.FRINGES)}), eye colour ({', '.join(portraits.EYE_COLOURS)}), skin "
        f"tone ({', '.join(portraits.SKIN_TONES)}), clothing ({', '.join(portraits.CLOTHING_COLOURS)})"
        f", background ({', '.join(portraits.BACKGROUNDS)}); head offset up to "
        f"+-{portraits.HEAD_X_JITTER} of the width sideways and +-{portraits.HEAD_Y_JITTER} units "
        f"vertically, scale {portraits.SCALE_RANGE}, tilt +-{portraits.TILT_DEGREES} degrees.",
        "",
        "| tile | seed | mouth | band | hair | fringe | eyes | skin | clothing | background |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, l in enumerate(labels):
        mouth = f"open {l['mouth_openness']:.2f}" if l["mouth_open"] else "closed"
        lines.append(f"| {index // SHEET_COLUMNS + 1},{index % SHEET_COLUMNS + 1} | {l['seed']} | {mouth} "
                     f"| {l['hair_band_colour'] or '-'} | {l['hair_colour']} | {l['fringe']} "
                     f"| {l['eye_colour']} | {l['skin_tone']} | {l['clothing_colour']} | {l['background']} |")
    return "\n".join(lines) + "\n"


def _train_classifier(args: argparse.Namespace) -> int:
    from ganinterface.demo import classifier
    from ganinterface.export.userfiles import check_writable

    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    if args.batch is not None and args.batch < 2:
        raise UserError(f"--batch must be at least 2, got {args.batch}")
    if args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    out = args.out or bundled.classifier_checkpoint()
    if out.suffix != ".safetensors":
        raise UserError(f"--out {out}: the weights file must end in .safetensors")
    check_writable(out)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    overrides = {"steps": args.steps, "batch": args.batch}
    settings = classifier.TrainSettings(threads=args.threads,
                                        **{k: v for k, v in overrides.items() if v is not None})
    try:
        report = classifier.train(settings, out)
    except OSError as error:
        raise UserError(f"{error.filename or out}: {error.strerror or error}") from None
    for name, accuracy in report["accuracy"].items():
        print(f"{name:>16}: {accuracy:.4f} (blurred {report['accuracy_blurred'][name]:.4f})")
    return 0
