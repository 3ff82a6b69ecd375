"""``ganinterface apply-recipe`` and ``ganinterface animate``: edits and animations from the shell.

Both render through the same ``Renderer`` as the window, so a frame or image here has the pixels the
window would show for the same Scene.  Every file is written atomically; Ctrl-C leaves no partial
file (finished images of a batch stay, each complete).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ganinterface.cli import UserError, options

if TYPE_CHECKING:
    from ganinterface.engine.renderer import Renderer
    from ganinterface.engine.scene import Recipe, Scene

_SEED_NEEDS_RECIPE = ("--seed animates a recipe's strength: add --recipe R.json "
                      "(or use --seeds to blend between seeds)")


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_apply_recipe(subparsers)
    _register_animate(subparsers)


# ---- shared options ---------------------------------------------------------------------------------

def _add_model_options(parser: argparse.ArgumentParser) -> None:
    options.add_checkpoint(parser)
    options.add_device(parser)
    options.add_latent_options(parser)
    options.add_quiet(parser)
    parser.add_argument("--force", action="store_true",
                        help="apply a recipe even if it was made for a different model")


def check_recipe_model(args: argparse.Namespace, recipe: "Recipe", renderer: "Renderer") -> None:
    """Refuse a recipe made for another model than the renderer's, unless ``--force``."""
    from ganinterface.export.userfiles import WrongModelError, check_made_for
    from ganinterface.models.native import generator_hash

    if args.force:
        return
    try:
        check_made_for(args.recipe, recipe.model_hash, generator_hash(renderer.generator))
    except WrongModelError as error:
        raise UserError(f"{error}; pass --force to apply it anyway") from None


# ---- apply-recipe -----------------------------------------------------------------------------------

def _register_apply_recipe(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "apply-recipe", help="apply a saved edit recipe to many seeds",
        description="Render each seed with the recipe's edits applied and save one PNG per seed "
                    "(each PNG carries its Scene, so it can be reopened in the window).")
    parser.add_argument("recipe", metavar="RECIPE", type=options.recipe_path,
                        help=options.recipe_help("the edits to apply"))
    parser.add_argument("--seeds", required=True, help=options.seeds_help("seeds to edit"))
    parser.add_argument("--strength", type=options.finite_float, default=1.0,
                        help="multiply every edit amount by this (default 1)")
    parser.add_argument("-o", "--output", required=True, metavar="PATTERN",
                        help="output path with {seed} (or {index}), e.g. out/{seed}.png or "
                             "out/{seed:04d}.png")
    parser.add_argument("--scale", type=options.positive_int, default=1,
                        help="enlarge the saved images this many times (nearest neighbour)")
    options.add_keep_rest_option(parser)
    _add_model_options(parser)
    options.add_batch_options(parser)
    parser.set_defaults(handler=_apply_recipe)


def _read_recipe(args: argparse.Namespace, path: str) -> "Recipe":
    """The recipe file, with the rest of the picture kept or not as ``--keep-rest`` says."""
    from ganinterface.export.userfiles import read_recipe

    return options.rest_as_asked(args, read_recipe(path))


def _apply_recipe(args: argparse.Namespace) -> int:
    from ganinterface.export.batch import PngImage
    from ganinterface.export.jobs import on_seed
    from ganinterface.export.userfiles import check_writable

    seeds = options.seed_list(args.seeds)
    paths = options.output_paths(args.output, [(s, f"seed{s}") for s in seeds])
    for path in paths:
        check_writable(path)
    recipe = _read_recipe(args, args.recipe)
    renderer = options.renderer(args)
    check_recipe_model(args, recipe, renderer)
    scene = recipe.scaled(args.strength).applied_to(options.seed_scene(args))
    report = options.run_batch(args, renderer.generator, renderer.device,
                               [on_seed(scene, seed) for seed in seeds], paths,
                               PngImage(args.scale), "apply-recipe")
    options.report(args, options.written_lines(report.written, "images"))
    return 0


# ---- animate ----------------------------------------------------------------------------------------

def _register_animate(subparsers: argparse._SubParsersAction) -> None:
    from ganinterface.engine.animation import CURVES, EASINGS
    from ganinterface.export.animation import FORMATS

    parser = subparsers.add_parser(
        "animate", help="interpolate between seeds, or animate a recipe's strength",
        description="Either blend between keyframe seeds (--seeds) or latent files (--latents: a "
                    "morph from one projected picture to another), or play a recipe on one seed "
                    "with its strength following a curve (--seed with --recipe; --curve talk opens "
                    "and closes a mouth). Writes a GIF, an MP4 (H.264), a PNG sequence (a directory) "
                    "or a strip PNG, chosen by the output's extension.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--seeds", help=options.seeds_help("keyframe seeds to blend between"))
    what.add_argument("--seed", type=int, help="the seed a recipe's strength is animated on")
    what.add_argument("--latents", nargs="+", metavar="LATENT",
                      help="keyframe latent files (.npz from `project`, or .npy) to morph between, "
                           "in W or W+; their detail and noise maps blend with them")
    parser.add_argument("--space", choices=("w", "z"), default="w",
                        help="blend in W (linear, default) or in Z (spherical)")
    parser.add_argument("--loop", action="store_true", help="blend back to the first seed at the end")
    parser.add_argument("--easing", choices=EASINGS, default="linear",
                        help="pace within each blend (ease: slow at the keyframes)")
    parser.add_argument("--recipe", metavar="RECIPE", type=options.recipe_path,
                        help=options.recipe_help("with --seed, the recipe to animate; with --seeds, "
                                                 "applied to every frame"))
    options.add_keep_rest_option(parser)
    parser.add_argument("--curve", choices=CURVES, default="talk",
                        help="how the recipe's strength moves (default talk: a sine loop)")
    parser.add_argument("--cycles", type=options.positive_float, default=1.0,
                        help="repetitions of a ping-pong or talk curve (default 1)")
    parser.add_argument("--strength", type=options.finite_float, default=1.0,
                        help="the recipe's strength at the curve's top (default 1)")
    parser.add_argument("--strength-from", type=options.finite_float, default=0.0,
                        help="the recipe's strength at the curve's bottom (default 0)")
    parser.add_argument("--frames", type=options.positive_int, default=48,
                        help="number of frames (default 48)")
    parser.add_argument("--fps", type=options.positive_float, default=24.0,
                        help="frames per second (default 24)")
    parser.add_argument("-o", "--output", required=True,
                        help="out.gif, out.mp4, out_dir/ (PNG sequence) or strip.png")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="override the format the output's extension implies")
    parser.add_argument("--size", type=options.image_size, default=None, metavar="WxH",
                        help="resize frames, e.g. 256x128")
    parser.add_argument("--resample", choices=("lanczos", "nearest"), default="lanczos",
                        help="how --size resizes (nearest keeps pixels sharp)")
    parser.add_argument("--columns", type=options.positive_int, default=None,
                        help="strip: frames per row (default: all in one row)")
    _add_model_options(parser)
    options.add_where_options(parser, "many frames")
    parser.set_defaults(handler=_animate)


def animation_scenes(args: argparse.Namespace, renderer: "Renderer",
                     recipe: "Recipe | None") -> "list[Scene]":
    """The Scenes to render, one per frame, from the command's arguments."""
    from ganinterface.engine import animation

    if args.seeds is not None:
        seeds = options.seed_list(args.seeds)
        base = options.seed_scene(args, seeds[0])
        if recipe is not None:
            base = recipe.scaled(args.strength).applied_to(base)
        if args.space == "w":
            return animation.interpolate_w(base, seeds, args.frames, renderer.base_ws,
                                           loop=args.loop, easing=args.easing)
        return animation.interpolate_z(base, seeds, args.frames, renderer.generator.z_dim,
                                       animation.z_mapper(renderer, base), loop=args.loop,
                                       easing=args.easing)
    if args.latents is not None:
        return _morph_scenes(args, renderer, recipe)
    if recipe is None:
        raise UserError(_SEED_NEEDS_RECIPE)
    return animation.recipe_strength(options.seed_scene(args, args.seed), recipe, args.frames,
                                     args.curve, cycles=args.cycles, low=args.strength_from,
                                     high=args.strength)


def _morph_scenes(args: argparse.Namespace, renderer: "Renderer",
                  recipe: "Recipe | None") -> "list[Scene]":
    from ganinterface.engine import animation
    from ganinterface.export.userfiles import read_latent_file
    from ganinterface.models.native import generator_hash

    model_hash = generator_hash(renderer.generator)
    latents = [read_latent_file(path, renderer.generator, model_hash, renderer.generator.noise_shapes())
               for path in args.latents]
    base = options.seed_scene(args)
    if recipe is not None:
        base = recipe.scaled(args.strength).applied_to(base)
    keyframes = [animation.latent_keyframe(latent.w, latent.detail, latent.noise) for latent in latents]
    return animation.morph(base, keyframes, args.frames, renderer.generator.num_ws,
                           stored_noise=renderer.stored_noise_maps(), loop=args.loop, easing=args.easing)


def _check_animate_request(args: argparse.Namespace) -> str:
    """Everything that can be checked without the model; returns the output format."""
    from ganinterface.export.animation import format_for_path

    try:
        fmt = args.format or format_for_path(args.output)
    except ValueError as error:
        raise UserError(str(error)) from None
    if fmt == "gif" and args.fps > 50:
        raise UserError(f"GIFs cannot play faster than 50 fps in most viewers (got --fps {args.fps:g}); "
                        "write an MP4 instead")
    if args.seeds is not None and len(options.seed_list(args.seeds)) < 2:
        raise UserError(f"--seeds needs at least two keyframes to blend, got {args.seeds!r}; "
                        "use --seed with --recipe to animate one seed")
    if args.latents is not None and len(args.latents) < 2:
        raise UserError("--latents needs at least two latent files to morph between")
    if args.seed is not None and not args.recipe:
        raise UserError(_SEED_NEEDS_RECIPE)
    return fmt


def _animate(args: argparse.Namespace) -> int:
    from ganinterface.engine.animation import AnimationError
    from ganinterface.export.jobs import export_animation_on, frame_task
    from ganinterface.export.progress import TqdmProgress
    from ganinterface.export.userfiles import check_writable

    fmt = _check_animate_request(args)
    check_writable(args.output, folder=fmt == "png-seq")
    recipe = _read_recipe(args, args.recipe) if args.recipe else None
    renderer = options.renderer(args)
    if recipe is not None:
        check_recipe_model(args, recipe, renderer)
    try:
        scenes = animation_scenes(args, renderer, recipe)
    except AnimationError as error:
        raise UserError(str(error)) from None
    executor = options.executor(args, renderer.generator, renderer.device, frame_task(),
                                len(scenes))
    with TqdmProgress("animate", unit="frame", total=len(scenes), disable=args.quiet) as progress:
        path = export_animation_on(executor, scenes, args.output, fmt, fps=args.fps,
                                   size=args.size, resample=args.resample, columns=args.columns,
                                   progress=progress)
    options.report(args, options.animation_lines(path, fmt, len(scenes), args.fps))
    return 0
