"""``ganinterface demo-eval``: how good is a portrait generator (and, with --edits, its recipes)?"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ganinterface.cli import UserError, options

DEFAULT_QUALITY_SEEDS = "0-1999"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo-eval", help="measure a portrait generator (or its edits) with the attribute classifier",
        description="Sample the generator, read every sample with the attribute classifier and "
                    "report the share read confidently, attribute frequencies against the "
                    "renderer's, and Fréchet distances beside calibration distances. With --edits, "
                    "score the shipped recipes and directions instead (flip rate, locality, "
                    "preservation, mask area). With --projection, project renders of the "
                    "procedural renderer into the generator, with its encoder (and again without "
                    "detail maps) and without it, and report PSNR, attribute agreement, speed, "
                    "the recipes on the projections and morph midpoints.")
    options.add_checkpoint(parser)
    parser.add_argument("--seeds", default=None, help=options.seeds_help(
        "seeds to sample", f"{DEFAULT_QUALITY_SEEDS}; with --edits, the evaluation seeds of the "
        "edit report"))
    options.add_truncation(parser)
    parser.add_argument("--classifier", type=Path, default=None,
                        help="attribute classifier weights (default: the shipped one)")
    parser.add_argument("--edits", action="store_true",
                        help="score the shipped recipes and directions instead")
    parser.add_argument("--projection", action="store_true",
                        help="measure projection of renders of the procedural renderer instead")
    parser.add_argument("--steps", type=options.positive_int, default=None,
                        help="with --projection: search steps per picture (default: 120, as "
                             "project's from an encoder's guess)")
    parser.add_argument("--discriminator", action="store_true",
                        help="with --projection: add the discriminator's features to the distance")
    parser.add_argument("--encoder", type=Path, default=None, metavar="FILE",
                        help="with --projection: the encoder (default: X.encoder.safetensors beside "
                             "the checkpoint, when there is one)")
    parser.add_argument("--from", dest="edits_dir", type=Path, default=None, metavar="DIR",
                        help="with --edits: the directory holding recipes/ and directions/, as "
                             "demo-edits --out writes it (default: beside the built-in model); the "
                             "same for --projection's recipes")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                        help="also write the report as JSON")
    options.add_device(parser)
    options.add_where_options(parser, "many samples")
    parser.set_defaults(handler=_demo_eval)

    make = subparsers.add_parser(
        "demo-edits", help="find the built-in model's recipes from labelled samples",
        description="Sample the generator, label the samples with the attribute classifier, and "
                    "write recipes (open/close mouth, add/remove hair band) with how they were "
                    "found in their JSON.")
    options.add_checkpoint(make)
    make.add_argument("--out", type=Path, default=None,
                      help="directory for recipes/ and directions/ (default: beside the built-in model)")
    # defaults live in search.shipped, which is imported only when the command runs
    make.add_argument("--samples", type=int, default=None,
                      help="labelled samples to learn from (default: 600)")
    make.add_argument("--tuning", type=int, default=None,
                      help="seeds to choose layer and strength on (default: 150)")
    make.add_argument("--classifier", type=Path, default=None, help="attribute classifier weights")
    make.add_argument("--resume", action="store_true",
                      help="keep the recipes an interrupted run already wrote under --out for the "
                           "same goals and model (adding the levels that add-hair-band follows, "
                           "if missing)")
    make.add_argument("--only", nargs="+", default=None, metavar="RECIPE",
                      help="search only these recipes, by file name without .json (open-mouth, "
                           "close-mouth, add-hair-band, remove-hair-band); the others are left alone")
    options.add_device(make)
    options.add_where_options(make, "many samples")
    make.set_defaults(handler=_demo_edits)

    directions = subparsers.add_parser(
        "demo-directions", help="find the built-in model's attribute directions from labelled samples",
        description="Sample the generator, label the samples with the attribute classifier, find "
                    "directions for mouth open and hair band by mean difference, conditional "
                    "boundaries in W (on several w row ranges), style channels and learnt style "
                    "offsets (two-sided), score each way on tuning seeds at the amount that clears "
                    "the aims (flip 90%, preservation 95%) by the most, join the best style-space "
                    "side each way into one two-sided direction, and write the one that "
                    "meets them on the most ways, then by the most (with its figures on seeds "
                    "0-199 in its JSON) and each method's best under directions/methods/; hair "
                    "colours by mean difference.")
    options.add_checkpoint(directions)
    directions.add_argument("--out", type=Path, default=None,
                            help="directory for directions/ (default: beside the built-in model)")
    directions.add_argument("--samples", type=int, default=None,
                            help="labelled samples to learn from (default: 600)")
    directions.add_argument("--classifier", type=Path, default=None, help="attribute classifier weights")
    options.add_device(directions)
    options.add_where_options(directions, "many samples")
    directions.set_defaults(handler=_demo_directions)


def _demo_eval(args: argparse.Namespace) -> int:
    from ganinterface.atomic import atomic_write_text
    from ganinterface.export.progress import TqdmProgress
    from ganinterface.export.userfiles import check_writable

    seeds = options.seed_list(args.seeds) if args.seeds else None
    if args.edits and args.projection:
        raise UserError("choose --edits or --projection, not both")
    if args.json:
        check_writable(args.json)
    generator, classifier, device = _load_measuring_kit(args)
    if args.projection:
        report, text = _projection_report(args, generator, classifier, seeds, device)
    elif args.edits:
        from ganinterface.search.evaluation import edit_report, format_edit_report

        with TqdmProgress("scoring edits", unit="edit") as progress:
            try:
                report = edit_report(generator, classifier, seeds=seeds, device=device,
                                     progress=progress, directory=args.edits_dir,
                                     executor_for=options.executor_for(args, generator, device))
            except ValueError as error:
                raise UserError(str(error)) from None
        text = format_edit_report(report)
    else:
        from ganinterface.demo.evaluate import format_report, quality_report

        seeds = seeds or options.seed_list(DEFAULT_QUALITY_SEEDS)
        with TqdmProgress("sampling", unit="image", total=len(seeds)) as progress:
            report = quality_report(generator, classifier, seeds,
                                    truncation_psi=options.truncation_psi(args),
                                    device=device, progress=progress,
                                    executor_for=options.executor_for(args, generator, device))
        text = format_report(report)
    print(text)
    if args.json:
        try:
            atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        except OSError as error:
            raise UserError(f"{args.json}: cannot write the report ({error.strerror})") from None
    return 0


def _projection_report(args: argparse.Namespace, generator, classifier, seeds, device):
    from ganinterface import bundled
    from ganinterface.engine.encoder import encoder_path, load_encoder
    from ganinterface.engine.picture_distance import distance_for
    from ganinterface.export.progress import TqdmProgress
    from ganinterface.search.projection_report import (DEFAULT_STEPS, format_projection_report,
                                                       projection_report)

    beside = encoder_path(args.checkpoint or bundled.builtin_checkpoint())
    path = args.encoder or (beside if beside.exists() else None)
    encoder = load_encoder(path, generator).to(device) if path else None
    distance = distance_for(args.checkpoint, generator, discriminator=args.discriminator)
    with TqdmProgress("projecting", unit="picture") as progress:
        try:
            report = projection_report(generator, classifier, seeds, encoder=encoder,
                                       distance=distance, steps=args.steps or DEFAULT_STEPS,
                                       device=device, progress=progress, directory=args.edits_dir,
                                       executor_for=options.executor_for(args, generator, device))
        except ValueError as error:
            raise UserError(str(error)) from None
    report["encoder"] = str(path) if path else None
    return report, format_projection_report(report)


def _load_measuring_kit(args: argparse.Namespace):
    from ganinterface.demo.classifier import load_classifier
    from ganinterface.models import load_generator

    device = options.chosen_device(args)
    try:
        classifier = load_classifier(args.classifier)
    except ValueError as error:
        raise UserError(str(error)) from None
    generator = load_generator(args.checkpoint, device=device)
    if generator.img_height != 2 * generator.img_width:
        raise UserError(f"{args.checkpoint}: the classifier reads 2:1 portraits, this generator makes "
                        f"{generator.img_width} × {generator.img_height} px images")
    return generator, classifier, device


def _searched(args: argparse.Namespace, search):
    """(out directory, ``search(generator, classifier, out, progress, report)``): a search for the
    shipped edits, its progress on a bar and each tried setting on stderr."""
    from ganinterface import bundled
    from ganinterface.export.progress import TqdmProgress
    from ganinterface.export.userfiles import check_writable

    out = args.out or bundled.checkpoints_dir()
    check_writable(out, folder=True)
    generator, classifier, _ = _load_measuring_kit(args)
    with TqdmProgress("sampling", unit="image") as progress:
        try:
            return out, search(generator, classifier, out, progress,
                               lambda line: print(line, file=sys.stderr, flush=True))
        except ValueError as error:
            raise UserError(str(error)) from None


def _demo_edits(args: argparse.Namespace) -> int:
    from ganinterface.search.shipped import FINDING_SAMPLES, TUNING_SEEDS, make_shipped_edits
    from ganinterface.search.trials import stage_text

    goals = _chosen_goals(args.only)
    out, summary = _searched(args, lambda generator, classifier, out, progress, report: make_shipped_edits(
        generator, classifier, out, finding=args.samples or FINDING_SAMPLES,
        tuning=args.tuning or TUNING_SEEDS, progress=progress, report=report,
        resume=args.resume, goals=goals,
        executor_for=options.executor_for(args, generator, generator.w_avg.device)))
    for name, figures in summary["recipes"].items():
        stages = " + ".join(stage_text(stage) for stage in figures["stages"])
        print(f"{name:<18} {stages}  tuning flip {figures['flip_rate']:.0%} "
              f"locality {figures['locality']:.0%}")
    print(f"written under {out}")
    return 0


def _chosen_goals(stems: list[str] | None):
    """The search goals ``--only`` names (all of them without it)."""
    from ganinterface.search.goals import GOALS

    if stems is None:
        return GOALS
    known = {goal.stem: goal for goal in GOALS}
    unknown = [stem for stem in stems if stem not in known]
    if unknown:
        raise UserError(f"--only: no recipe named {', '.join(unknown)} (the recipes are "
                        f"{', '.join(known)})")
    return tuple(known[stem] for stem in dict.fromkeys(stems))


def _demo_directions(args: argparse.Namespace) -> int:
    from ganinterface.search.shipped import FINDING_SAMPLES, make_shipped_directions

    out, names = _searched(args, lambda generator, classifier, out, progress, report: make_shipped_directions(
        generator, classifier, out, finding=args.samples or FINDING_SAMPLES, progress=progress,
        report=report, executor_for=options.executor_for(args, generator, generator.w_avg.device)))
    print(f"directions: {', '.join(names)}")
    print(f"written under {out / 'directions'}")
    return 0
