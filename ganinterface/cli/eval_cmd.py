"""``ganinterface demo-eval``: how good is a portrait generator (and, with --edits, its recipes)?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganinterface.cli import UserError

DEFAULT_QUALITY_SEEDS = "0-1999"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo-eval", help="measure a portrait generator (or its edits) with the attribute classifier",
        description="Sample the generator, read every sample with the attribute classifier and "
                    "report the share read confidently, attribute frequencies against the "
                    "renderer's, and Fréchet distances beside calibration distances. With --edits, "
                    "score the shipped recipes and directions instead (flip rate, locality, "
                    "preservation, mask area).")
    parser.add_argument("checkpoint", nargs="?", default=None, metavar="CKPT",
                        help="portrait generator (default: the built-in model)")
    parser.add_argument("--seeds", default=None,
                        help=f"seeds to sample (default: {DEFAULT_QUALITY_SEEDS}; with --edits, the "
                             "evaluation seeds of the edit report)")
    parser.add_argument("--trunc", type=float, default=1.0, help="truncation psi (default 1)")
    parser.add_argument("--classifier", type=Path, default=None,
                        help="attribute classifier weights (default: the shipped one)")
    parser.add_argument("--edits", action="store_true",
                        help="score the shipped recipes and directions instead")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                        help="also write the report as JSON")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.set_defaults(handler=_demo_eval)


def _demo_eval(args: argparse.Namespace) -> int:
    from ganinterface.demo.classifier import load_classifier
    from ganinterface.engine.device import pick_device
    from ganinterface.engine.latents import parse_seeds
    from ganinterface.export.atomic import atomic_write_text
    from ganinterface.export.progress import TqdmProgress
    from ganinterface.models import load_generator

    try:
        device = pick_device(args.device)
    except ValueError as error:
        raise UserError(str(error)) from None
    try:
        seeds = parse_seeds(args.seeds) if args.seeds else None
    except ValueError as error:
        raise UserError(f"--seeds: {error}") from None
    try:
        classifier = load_classifier(args.classifier)
    except ValueError as error:
        raise UserError(str(error)) from None
    generator = load_generator(args.checkpoint, device=device)
    if generator.img_height != 2 * generator.img_width:
        raise UserError(f"{args.checkpoint}: the classifier reads 2:1 portraits, this generator makes "
                        f"{generator.img_height}x{generator.img_width} images")
    if args.edits:
        from ganinterface.demo.edit_eval import edit_report, format_edit_report

        with TqdmProgress("scoring edits", unit="seed") as progress:
            report = edit_report(generator, classifier, seeds=seeds, device=device, progress=progress)
        text = format_edit_report(report)
    else:
        from ganinterface.demo.evaluate import format_report, quality_report

        seeds = seeds or parse_seeds(DEFAULT_QUALITY_SEEDS)
        with TqdmProgress("sampling", unit="image") as progress:
            report = quality_report(generator, classifier, seeds, truncation_psi=args.trunc,
                                    device=device, progress=progress)
        text = format_report(report)
    print(text)
    if args.json:
        try:
            atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        except OSError as error:
            raise UserError(f"{args.json}: cannot write the report ({error.strerror})") from None
    return 0
