"""``ganinterface project`` and ``ganinterface sample-latents``: pictures in, latents out, and new
portraits drawn from a Gaussian fitted to latents.

``project`` crops each picture (where ``--crop`` says, else its largest centred box with the
model's aspect), searches for its latent (``engine.projection``), and writes the latent file
(``.npz``, see docs/file-formats.md) and a reconstruction PNG beside it that carries its Scene, so
``render --scene``, ``apply-recipe --scene`` and the window open it like any portrait.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ganinterface.cli import UserError, options

if TYPE_CHECKING:
    from ganinterface.export.jobs import Picture
    from ganinterface.models.base import GeneratorBase
    from torch import Tensor

CHECKPOINT_SUFFIXES = (".pkl", ".pt", ".pth", ".safetensors")


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_project(subparsers)
    _register_sample(subparsers)


def _register_project(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "project", help="find the latents of pictures (bring your own picture)",
        description="Crop each picture to the model's aspect (--crop says where), search for the "
                    "latent whose render matches it, and write the latent file (.npz) and a "
                    "reconstruction PNG beside it carrying its scene. Example: ganinterface "
                    "project me.jpg you.png -o out/{name}.npz")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE",
                        help="pictures (any size; centre-cropped to the model's aspect unless "
                             "--crop says where); a last argument ending in .pkl, .pt, .pth or "
                             ".safetensors is the checkpoint")
    parser.add_argument("--crop", type=_crop, default=None, metavar="X,Y,W,H",
                        help="the part of each picture to project, in its pixels: left, top, width, "
                             "height, with the model's aspect (default: the largest centred crop)")
    parser.add_argument("--checkpoint", dest="checkpoint", metavar="CKPT", default=None,
                        help="the model (default: the built-in portrait model)")
    parser.add_argument("--steps", type=options.positive_int, default=None,
                        help="optimisation steps (default 200, or 120 when an encoder gives the start)")
    parser.add_argument("--space", choices=("w", "w+"), default="w+",
                        help="w+: a W search, then one row per layer (closer: 17 against 10 dB on a "
                             "built-in portrait); w: one vector only (default: w+)")
    parser.add_argument("--noise", action="store_true",
                        help="also optimise the noise maps (StyleGAN2 models only)")
    parser.add_argument("--detail", action=argparse.BooleanOptionalAction, default=True,
                        help="also fit a detail map added to the features of the layer at 1/8 of "
                             "the image height, for a closer likeness (built-in model, procedural "
                             "portraits: 27.6 against 23.6 dB); --no-detail fits the latent alone "
                             "(default: --detail)")
    parser.add_argument("--encoder", metavar="FILE", default=None,
                        help="an encoder that guesses the start (default: X.encoder.safetensors "
                             "beside the checkpoint, if there)")
    parser.add_argument("--discriminator", action="store_true",
                        help="add the features of the model's discriminator (X.discriminator."
                             "safetensors beside it, else the one inside an NVlabs pickle or "
                             "rosinality file) to the pixel distance; each step costs ~1.7x")
    parser.add_argument("--perceptual", metavar="FILE", default=None,
                        help="VGG16 weights (torchvision names, optionally with LPIPS lin layers; "
                             ".safetensors or a torch state dict) to add to the distance")
    parser.add_argument("--seed", type=int, default=0, help="random stream of the search (default 0)")
    parser.add_argument("-o", "--output", default="out/{name}.npz", metavar="PATTERN",
                        help="latent file per picture; {name} (the picture's name) and {index} are "
                             "filled in; the reconstruction PNG goes beside it (default: %(default)s)")
    options.add_device(parser)
    options.add_quiet(parser)
    options.add_skip_existing(options.add_where_options(parser, "many pictures"))
    parser.set_defaults(handler=_project)


def _register_sample(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sample-latents", help="draw new portraits from a Gaussian fitted to latent files",
        description="Fit the mean and covariance, in W, of latent files (projected pictures, "
                    "or any saved latents) and draw new portraits from it. Example: ganinterface "
                    "sample-latents --from out/*.npz --count 8 --shrink 0.3 -o samples/{index}.png")
    options.add_checkpoint(parser)
    parser.add_argument("--from", dest="sources", nargs="+", required=True, metavar="LATENT",
                        help="latent files (.npz or .npy; W+ ones count as their mean row)")
    parser.add_argument("--count", type=options.positive_int, default=8,
                        help="portraits to draw (default 8)")
    parser.add_argument("--shrink", type=_fraction, default=0.0,
                        help="0..1: pull the draws towards the mean (well-behaved portraits from "
                             "few latents; default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random stream of the draws (default 0)")
    parser.add_argument("-o", "--output", default="out/sample{index}.png", metavar="PATTERN",
                        help="one file per draw, {index} filled in: .png (carrying its scene) or "
                             ".npz latent file (default: %(default)s)")
    options.add_device(parser)
    options.add_quiet(parser)
    parser.set_defaults(handler=_sample)


def _crop(text: str) -> tuple[int, int, int, int]:
    """X,Y,W,H -> (left, top, right, bottom)."""
    parts = text.split(",")
    try:
        x, y, width, height = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H in whole pixels, e.g. 100,50,400,800; "
                                         f"got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"the crop's width and height must be at least 1, got {text}")
    return x, y, x + width, y + height


def _fraction(text: str) -> float:
    value = options.finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


# ---- project -------------------------------------------------------------------------------------

def split_inputs(inputs: list[str], checkpoint: str | None) -> tuple[list[str], str | None]:
    """(pictures, checkpoint): a last input with a checkpoint's suffix is the checkpoint."""
    if len(inputs) > 1 and Path(inputs[-1]).suffix.lower() in CHECKPOINT_SUFFIXES:
        if checkpoint is not None:
            raise UserError("give the checkpoint once, as the last argument or as --checkpoint")
        return inputs[:-1], inputs[-1]
    return inputs, checkpoint


def _project(args: argparse.Namespace) -> int:
    from ganinterface.engine.encoder import guess_for
    from ganinterface.engine.projection import STEPS, STEPS_FROM_A_GUESS, ProjectionSettings
    from ganinterface.engine.picture_distance import distance_for
    from ganinterface.export.jobs import ProjectionWork
    from ganinterface.export.userfiles import check_writable
    from ganinterface.models.loading import load_generator
    from ganinterface.models.native import generator_hash

    pictures, checkpoint = split_inputs(args.inputs, args.checkpoint)
    latent_paths = options.output_paths(args.output, [(0, Path(p).stem) for p in pictures], (".npz",))
    outputs = [(path, path.with_suffix(".png")) for path in latent_paths]
    for path in (path for pair in outputs for path in pair):
        check_writable(path)
    device = options.chosen_device(args)
    generator = load_generator(checkpoint, device)
    # every picture read and cropped before anything else is prepared or searched
    targets = [_checked_crop(picture, args.crop, generator) for picture in pictures]
    model_hash = generator_hash(generator)
    distance = distance_for(checkpoint, generator, discriminator=args.discriminator,
                            perceptual=args.perceptual)
    for note in distance.notes:  # the search goes on without that network
        print(f"ganinterface project: {note}", file=sys.stderr)
    options.report(args, [f"distance: {distance.description}"])
    guess = guess_for(checkpoint, generator, args.encoder, model_hash)
    settings = ProjectionSettings(space=args.space,
                                  steps=args.steps or (STEPS_FROM_A_GUESS if guess else STEPS),
                                  optimise_noise=args.noise, detail=args.detail, seed=args.seed)
    task = ProjectionWork(settings, distance, model_hash, checkpoint)
    items = [_picture(path, target, generator, guess) for path, target in zip(pictures, targets)]
    report = options.run_task(args, generator, device, items, outputs, task, "project",
                              lambda indices: ", ".join(pictures[i] for i in indices), "pictures")
    options.report(args, [f"{pictures[i]}: {note} -> {latent_paths[i]}, {outputs[i][1]}"
                          for i, note in sorted(report.notes.items())])
    return 0


def _checked_crop(picture: str, box: tuple[int, int, int, int] | None, generator: "GeneratorBase"):
    """The picture's target tensor: ``box`` of it (checked), or its largest centred crop."""
    from ganinterface.engine.projection import ProjectionError, crop_to_aspect
    from ganinterface.export.userfiles import read_image

    try:
        return crop_to_aspect(read_image(picture), generator, box)
    except ProjectionError as error:
        raise UserError(f"{picture}: {error}") from None


def _picture(path: str, target: "Tensor", generator: "GeneratorBase", guess) -> "Picture":
    """A picture's crop with the encoder's guess (made here: one pass of a small network, and the
    workers need no encoder)."""
    from ganinterface.export.jobs import Picture

    target = target.to(generator.w_avg.device)
    return Picture(Path(path).name, target.cpu(), None if guess is None else guess(target).cpu())


# ---- sample-latents -----------------------------------------------------------------------------

def _sample(args: argparse.Namespace) -> int:
    from ganinterface.engine.latents import LatentError, fit_gaussian
    from ganinterface.export.jobs import latent_scene, render_or_raise
    from ganinterface.export.userfiles import (LatentFile, check_writable, make_folder_for,
                                               read_latent_file, write_latent_file, write_png)
    from ganinterface.models.native import generator_hash

    paths = options.output_paths(args.output, [(0, str(i)) for i in range(args.count)], (".png", ".npz"))
    for path in paths:
        check_writable(path)
    renderer = options.renderer(args)
    generator = renderer.generator
    model_hash = generator_hash(generator)
    latents = [read_latent_file(source, generator, model_hash).w for source in args.sources]
    try:
        gaussian = fit_gaussian(latents)
    except LatentError as error:
        raise UserError(str(error)) from None
    draws = gaussian.sample(args.count, seed=args.seed, shrink=args.shrink)

    for index, (w, path) in enumerate(zip(draws, paths)):
        latent = LatentFile(w=w, model_hash=model_hash, source=f"sample {index} of {len(args.sources)} latents")
        make_folder_for(path)
        if path.suffix.lower() == ".npz":
            write_latent_file(path, latent)
        else:
            scene = latent_scene(latent, args.checkpoint)
            write_png(path, render_or_raise(renderer, scene, what=path.name).image, scene)
    options.report(args, options.written_lines(paths, "samples"))
    return 0

