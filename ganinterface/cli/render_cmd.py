"""``ganinterface render`` and ``ganinterface features``: images and feature-map grids from the shell.

Seeds mean what they mean in NVlabs' gen_images.py, so seed 42 here is seed 42 there.  ``--scene``
renders Scenes saved by the window (a .json file, or a PNG carrying one) through the same Renderer,
so the pixels are the window's.  Outputs are written atomically: ``.png`` (carrying the Scene) or
``.npy`` (the raw float32 generator output (3, H, W), unclamped; for ``features``, the activations).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ganinterface.cli import UserError, options

if TYPE_CHECKING:
    from ganinterface.engine.scene import Scene

OUTPUT_TYPES = (".png", ".npy")


def register(subparsers: argparse._SubParsersAction) -> None:
    render = subparsers.add_parser(
        "render", help="render seeds (or saved scenes) to .png or .npy",
        description="Render images for seeds as NVlabs' gen_images.py does, or re-render saved "
                    "scenes. Example: ganinterface render my.pkl --seeds 0-7 --trunc 0.7 "
                    "-o out/seed{seed}.png")
    _add_common_options(render)
    render.add_argument("-o", "--output", default="out/seed{seed}.png", metavar="PATTERN",
                        help="output file; {seed}, {index} and {name} (scene file name) are filled "
                             "in; .png image or .npy raw float32 (3, H, W) (default: %(default)s)")
    render.set_defaults(handler=_render)

    features = subparsers.add_parser(
        "features", help="draw a layer's feature maps as a grid image",
        description="Colour every channel of one layer red (negative), white (zero), green "
                    "(positive) and lay them out in a grid. Example: ganinterface features my.pkl "
                    "--seeds 3 --layer b64.conv1 -o grid.png")
    _add_common_options(features)
    features.add_argument("--layer", required=True, help="layer name, e.g. b64.conv1")
    features.add_argument("--scale", choices=("shared", "channel"), default="shared",
                          help="one colour scale for the layer, or one per channel (default: shared)")
    features.add_argument("--palette", default="red-white-green",
                          help="red-white-green (default) or colour-blind (orange-white-blue)")
    features.add_argument("--columns", type=options.positive_int, default=None,
                          help="tiles per row (default: square)")
    features.add_argument("-o", "--output", default="features-seed{seed}.png", metavar="PATTERN",
                          help="output file; .png grid or .npy activations (C, h, w) float32 "
                               "(default: %(default)s)")
    features.set_defaults(handler=_features)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser)
    parser.add_argument("--seeds", default=None, help=options.seeds_help("seeds to render", "0"))
    options.add_latent_options(parser)
    options.add_device(parser)
    options.add_quiet(parser)
    options.add_batch_options(parser)
    parser.add_argument("--scene", action="append", default=[], metavar="FILE",
                        help="render a saved scene (.json, or a .png that carries one) instead of "
                             "seeds; may be given several times")


# ---- what to render -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    scene: "Scene"
    name: str  # the scene file's stem, or "seed{seed}"


def jobs_from_args(args: argparse.Namespace) -> list[Job]:
    from ganinterface.export.userfiles import read_scene

    if args.scene:
        given = [flag for flag, dest in {"--seeds": "seeds", **options.LATENT_FLAGS}.items()
                 if getattr(args, dest) is not None]
        if given:
            raise UserError(f"{given[0]} cannot be combined with --scene (the scene file "
                            "sets the latent)")
        return [Job(read_scene(path), Path(path).stem) for path in args.scene]
    seeds = options.seed_list(args.seeds if args.seeds is not None else "0")
    return [Job(options.seed_scene(args, seed), f"seed{seed}") for seed in seeds]


# ---- running ------------------------------------------------------------------------------------------

def _for_each(args: argparse.Namespace, what: str, noun: str, encoder_for) -> int:
    """Every job rendered as a batch job (``export.batch``), one per checkpoint (the CKPT argument
    wins over the checkpoint a scene names), with the file ``encoder_for(generator, raw)`` makes;
    then says what was written (``noun``: what a PNG output holds)."""
    from ganinterface.export.userfiles import check_writable
    from ganinterface.models.loading import load_generator

    jobs = jobs_from_args(args)
    paths = options.output_paths(args.output, [(job.scene.seed, job.name) for job in jobs],
                                 OUTPUT_TYPES)
    for path in paths:
        check_writable(path)
    raw = paths[0].suffix.lower() == ".npy"
    device = options.chosen_device(args)
    by_checkpoint: dict[str | None, list[int]] = {}
    for index, job in enumerate(jobs):
        checkpoint = args.checkpoint if args.checkpoint is not None else job.scene.checkpoint
        by_checkpoint.setdefault(checkpoint, []).append(index)
    written = []
    for checkpoint, indices in by_checkpoint.items():
        generator = load_generator(checkpoint, device)
        names = None if not args.scene else [jobs[i].name for i in indices]
        report = options.run_batch(args, generator, device, [jobs[i].scene for i in indices],
                                   [paths[i] for i in indices], encoder_for(generator, raw), what,
                                   names)
        written += report.written
    options.report(args, options.written_lines(written, "arrays" if raw else noun))
    return 0


def _render(args: argparse.Namespace) -> int:
    from ganinterface.export.batch import PngImage, RawArray

    return _for_each(args, "render", "images",
                     lambda generator, raw: RawArray() if raw else PngImage())


def _features(args: argparse.Namespace) -> int:
    from ganinterface.engine.colormap import PALETTES
    from ganinterface.export.batch import FeatureArray, FeatureGrid

    if args.palette not in PALETTES:
        raise UserError(f"unknown palette {args.palette!r}; palettes: {', '.join(PALETTES)}")

    def encoder_for(generator, raw: bool):
        try:
            generator.layer_index(args.layer)
        except KeyError as error:
            raise UserError(error.args[0]) from None
        if raw:
            return FeatureArray(args.layer)
        return FeatureGrid(args.layer, args.scale, args.palette, args.columns)

    return _for_each(args, "features", "feature grids", encoder_for)
