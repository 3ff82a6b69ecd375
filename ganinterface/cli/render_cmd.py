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
    from ganinterface.models.base import GeneratorBase

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
    parser.add_argument("--latent", action="append", default=[], metavar="FILE",
                        help="render a latent file (.npz from `project`, or .npy) instead of seeds; "
                             "may be given several times")
    borrow = parser.add_argument_group("borrow from a latent file (a projected picture)")
    borrow.add_argument("--style-from", metavar="LATENT",
                        help="take style rows from this latent (StyleMix): coarse rows carry shape "
                             "and identity, fine rows colours")
    borrow.add_argument("--style-rows", default="0-3", metavar="FIRST-LAST",
                        help="the w rows --style-from takes, inclusive (default 0-3)")
    borrow.add_argument("--resample-from", metavar="LATENT",
                        help="inside --resample-box, take --resample-layer's features from this "
                             "latent (RegionResample)")
    borrow.add_argument("--resample-layer", default=None, metavar="LAYER",
                        help="the layer --resample-from replaces, e.g. b32.conv1")
    borrow.add_argument("--resample-box", default="0,0,1,1", metavar="X0,Y0,X1,Y1",
                        help="the region, in fractions of the image (default: all of it)")
    parser.add_argument("--direction", action="append", default=[], metavar="FILE[:AMOUNT]",
                        help="move along a direction file (.npy with its .json, .pt, .csv, or a "
                             "style-space direction's .json) by AMOUNT (default 1), e.g. "
                             "mouth-open.json:6; may be given several times")
    parser.add_argument("--recipe", action="append", default=[], metavar="RECIPE[:STRENGTH]",
                        help=options.recipe_help("apply a recipe's edits too, STRENGTH times as "
                                                 "strong (default 1), e.g. to a projected picture's "
                                                 "--latent; may be given several times"))
    options.add_keep_rest_option(parser)


# ---- what to render -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    scene: "Scene"
    name: str  # the scene file's stem, or "seed{seed}"


def jobs_from_args(args: argparse.Namespace, model=None) -> list[Job]:
    """The scenes to render; ``model`` (num_ws, w_dim; the generator) checks latent files."""
    from ganinterface.export.userfiles import read_scene

    if args.scene and args.latent:
        raise UserError("--latent cannot be combined with --scene (the scene file sets the latent)")
    if args.latent:
        return [Job(_latent_scene(args, path, model), Path(path).stem) for path in args.latent]
    if args.scene:
        given = [flag for flag, dest in {"--seeds": "seeds", **options.LATENT_FLAGS}.items()
                 if getattr(args, dest) is not None]
        if given:
            raise UserError(f"{given[0]} cannot be combined with --scene (the scene file "
                            "sets the latent)")
        return [Job(read_scene(path), Path(path).stem) for path in args.scene]
    seeds = options.seed_list(args.seeds if args.seeds is not None else "0")
    return [Job(options.seed_scene(args, seed), f"seed{seed}") for seed in seeds]


def _latent_scene(args: argparse.Namespace, path: str, model) -> "Scene":
    latent = _read_latent(path, model, model.noise_shapes())
    return options.seed_scene(args).replace(**latent.scene_fields())


def _read_latent(path: str, model, noise_shapes: dict[str, tuple[int, ...]] | None = None):
    """A latent file checked against the model's shape and weights (one found with another model
    is refused)."""
    from ganinterface.engine.directions import model_hash
    from ganinterface.export.userfiles import read_latent_file

    return read_latent_file(path, model, model_hash(model), noise_shapes)


def borrowed_edits(args: argparse.Namespace, model) -> tuple:
    """The StyleMix, RegionResample, direction and recipe edits ``--style-from``,
    ``--resample-from``, ``--direction`` and ``--recipe`` ask for (a recipe made for another model
    is refused)."""
    from ganinterface.engine.directions import model_hash
    from ganinterface.engine.kinds import RegionResample, StyleMix
    from ganinterface.engine.scene import Mask, Rect
    from ganinterface.export.userfiles import read_direction, read_recipe

    edits = []
    digest = model_hash(model) if args.direction or args.recipe else ""
    for given in args.direction:
        path, amount = _file_amount(given)
        edits.append(read_direction(path, model, digest).to_edit(amount, Path(path).name))
    if args.style_from:
        first, last = _row_range(args.style_rows)
        w = _read_latent(args.style_from, model).w
        edits.append(StyleMix(seed=0, first=first, last=last, w=w, source=Path(args.style_from).name))
    if args.resample_from:
        if args.resample_layer is None:
            raise UserError("--resample-from needs --resample-layer (e.g. b32.conv1)")
        w = _read_latent(args.resample_from, model).w
        box = Rect(*_box(args.resample_box))
        edits.append(RegionResample(layer=args.resample_layer, mask=Mask(shapes=(box,)), seed=0, w=w,
                                    source=Path(args.resample_from).name))
    for given in args.recipe:
        path, strength = _file_amount(given)
        recipe = read_recipe(options.recipe_path(path), digest).scaled(strength)
        edits.extend(options.rest_as_asked(args, recipe).edits)
    return tuple(edits)


def _file_amount(text: str) -> tuple[str, float]:
    """FILE[:AMOUNT] -> (FILE, AMOUNT); a last ':' part that is not a number belongs to the name."""
    path, colon, amount = text.rpartition(":")
    if colon:
        try:
            return path, options.finite_float(amount)
        except (ValueError, argparse.ArgumentTypeError):
            pass
    return text, 1.0


def _row_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    if not (first.strip().isdigit() and last.strip().isdigit()) or int(last) < int(first):
        raise UserError(f"--style-rows {text!r}: write the first and last w rows, e.g. 0-3")
    return int(first), int(last)


def _box(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (options.finite_float(part) for part in parts)
    except (ValueError, argparse.ArgumentTypeError):
        raise UserError(f"--resample-box {text!r}: write four fractions X0,Y0,X1,Y1, e.g. 0.3,0.5,0.7,0.8") from None
    return x0, y0, x1, y1


# ---- running ------------------------------------------------------------------------------------------

def _for_each(args: argparse.Namespace, what: str, noun: str, encoder_for) -> int:
    """Every job rendered as a batch job (``export.batch``), one per checkpoint (the CKPT argument
    wins over the checkpoint a scene names), with the file ``encoder_for(generator, raw)`` makes;
    then says what was written (``noun``: what a PNG output holds)."""
    from ganinterface.export.userfiles import check_writable
    from ganinterface.models.loading import load_generator

    device = options.chosen_device(args)
    generators: dict[str | None, "GeneratorBase"] = {}

    def generator_for(checkpoint: str | None) -> "GeneratorBase":
        if checkpoint not in generators:
            generators[checkpoint] = load_generator(checkpoint, device)
        return generators[checkpoint]

    jobs = jobs_from_args(args, generator_for(args.checkpoint) if args.latent else None)
    by_checkpoint: dict[str | None, list[int]] = {}
    for index, job in enumerate(jobs):
        checkpoint = args.checkpoint if args.checkpoint is not None else job.scene.checkpoint
        by_checkpoint.setdefault(checkpoint, []).append(index)
    if _borrows(args):  # every file checked against the model it is used with, before any render
        for checkpoint, indices in by_checkpoint.items():
            borrowed = borrowed_edits(args, generator_for(checkpoint))
            for i in indices:
                jobs[i] = dataclasses.replace(jobs[i], scene=jobs[i].scene.replace(
                    edits=jobs[i].scene.edits + borrowed))
    paths = options.output_paths(args.output, [(job.scene.seed, job.name) for job in jobs],
                                 OUTPUT_TYPES)
    for path in paths:
        check_writable(path)
    raw = paths[0].suffix.lower() == ".npy"
    written = []
    for checkpoint, indices in by_checkpoint.items():
        generator = generator_for(checkpoint)
        names = None if not (args.scene or args.latent) else [jobs[i].name for i in indices]
        report = options.run_batch(args, generator, device, [jobs[i].scene for i in indices],
                                   [paths[i] for i in indices], encoder_for(generator, raw), what,
                                   names)
        written += report.written
    options.report(args, options.written_lines(written, "arrays" if raw else noun))
    return 0


def _borrows(args: argparse.Namespace) -> bool:
    """Whether edits come from files (``borrowed_edits``), each checked against the model."""
    return bool(args.style_from or args.resample_from or args.direction or args.recipe)


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
