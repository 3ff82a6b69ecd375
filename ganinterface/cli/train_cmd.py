"""``ganinterface train-demo``: train (or keep training) the built-in portrait generator;
``ganinterface train-encoder``: train the encoder that starts projections near the answer."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ganinterface.cli import UserError
from ganinterface.cli import options
from ganinterface.cli.options import add_device, finite_float, positive_float, positive_int
from ganinterface.demo.training import (DEFAULT_EXPORT, DEFAULT_RUN_DIR, RETUNABLE, RunOptions,
                                        TrainingError, TrainSettings, run)
from ganinterface.demo.training.encoder import EncoderRun, EncoderSettings

ENCODER_RUN_ROOT = DEFAULT_RUN_DIR.parent / "train-encoder"
BUILTIN_PICTURES = 4  # procedural renders per encoder step for the built-in model (its training data)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-demo", help="train the built-in portrait generator (resumable)",
        description="Train ganinterface's StyleGAN2 portrait generator on procedurally drawn "
                    "portraits. State is saved to the run directory every few minutes and on "
                    "Ctrl-C/SIGTERM; running the command again continues where it stopped.")
    add_arguments(parser)
    parser.set_defaults(handler=_train)

    encoder = subparsers.add_parser(
        "train-encoder", help="train an encoder for a generator, so projection starts near the answer",
        description="Train a small CNN that guesses the latent of a picture, on the generator's own "
                    "samples (a latent loss and a reconstruction loss through the generator). "
                    "State is saved to the run directory every few minutes and on Ctrl-C/SIGTERM; "
                    "running the command again continues where it stopped. The encoder file and "
                    "its model card (.json) are written when the steps are done.")
    options.add_checkpoint(encoder)
    encoder.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                         help="the encoder file (default: X.encoder.safetensors beside the "
                              "checkpoint X.safetensors)")
    encoder.add_argument("--steps", type=positive_int, default=EncoderRun.steps,
                         help="steps of the whole run, earlier invocations' included; the learning "
                              "rate decays over them (default: %(default)s)")
    encoder.add_argument("--minutes", type=positive_float,
                         help="stop this invocation after this many minutes (the state is kept)")
    encoder.add_argument("--space", choices=("w", "w+"), default=EncoderSettings.space,
                         help="guess one w, or one row per layer (default: %(default)s)")
    encoder.add_argument("--pictures", type=int, default=None, metavar="N",
                         help="renders of the procedural portrait renderer per step, reconstructed "
                              "through the generator, so the encoder learns the pictures it will be "
                              "given rather than only the generator's samples (default: "
                              f"{BUILTIN_PICTURES} for the built-in model, 0 for others)")
    encoder.add_argument("--run-dir", type=Path, default=None,
                         help="where the training state lives (default: a folder per generator "
                              f"under {ENCODER_RUN_ROOT})")
    encoder.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                         help="continue from RUN_DIR/state.pt if it exists (default: yes)")
    encoder.add_argument("--threads", type=positive_int, default=EncoderRun.threads,
                         help="torch CPU threads (default: %(default)s)")
    encoder.add_argument("--checkpoint-minutes", type=positive_float,
                         default=EncoderRun.checkpoint_minutes, help="state save interval")
    add_device(encoder)
    encoder.set_defaults(handler=_train_encoder)


def _train(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        settings, options = settings_from_args(args)
        run(settings, options)
    except TrainingError as error:
        raise UserError(str(error)) from None
    return 0


def _train_encoder(args: argparse.Namespace) -> int:
    from ganinterface import bundled
    from ganinterface.demo.training.encoder import train_encoder
    from ganinterface.engine.directions import model_hash
    from ganinterface.engine.encoder import encoder_path
    from ganinterface.export.userfiles import check_writable
    from ganinterface.models.loading import load_generator

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    checkpoint = Path(args.checkpoint) if args.checkpoint else bundled.builtin_checkpoint()
    output = args.output or encoder_path(checkpoint)
    check_writable(output)
    generator = load_generator(args.checkpoint, options.chosen_device(args))
    pictures = _pictures_per_step(args, generator)
    digest = model_hash(generator)
    run_options = EncoderRun(
        output=output, run_dir=(args.run_dir or ENCODER_RUN_ROOT / digest[:16]).expanduser(),
        steps=args.steps, minutes=args.minutes, resume=args.resume,
        checkpoint_minutes=args.checkpoint_minutes, threads=args.threads)
    try:
        trainer = train_encoder(generator, digest, EncoderSettings(space=args.space, pictures=pictures),
                                run_options,
                                checkpoint=checkpoint.name)
    except TrainingError as error:
        raise UserError(str(error)) from None
    if trainer.step >= args.steps:
        check = trainer.card["check"]
        print(f"{output}: {trainer.step} steps; on {check['samples']} samples of the generator, "
              f"its guesses render at {check['psnr_db']:.1f} dB PSNR (w_avg: "
              f"{check['psnr_db_w_avg']:.1f} dB)")
    else:
        print(f"stopped at step {trainer.step} of {args.steps}; run the command again to go on")
    return 0


def _pictures_per_step(args: argparse.Namespace, generator) -> int:
    if args.pictures is None:
        return BUILTIN_PICTURES if args.checkpoint is None else 0
    if args.pictures < 0:
        raise UserError("--pictures must be 0 or more")
    if args.pictures and generator.img_height != 2 * generator.img_width:
        raise UserError(f"--pictures: the procedural portraits are 2:1 (height = 2 x width); this "
                        f"model makes {generator.img_width} × {generator.img_height} px")
    return args.pictures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainSettings()
    parser.add_argument("--minutes", type=finite_float, help="stop after this many minutes (this invocation)")
    parser.add_argument("--kimg", type=finite_float, help="stop once this many thousand images have been seen")
    parser.add_argument("--batch", type=int, help=f"images per step (default: {defaults.batch})")
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR,
                        help="where the training state, log and samples live (default: %(default)s)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue from RUN_DIR/state.pt if it exists (default: yes)")
    parser.add_argument("--retune", action="store_true",
                        help="on resume, use those of --lr, --r1-gamma, --style-mixing and "
                             "--ema-kimg this command gives instead of the run's own (the others "
                             "stay as the run had them; recorded in the model card)")
    parser.add_argument("--init-from", type=Path,
                        help="continue from an exported generator (new runs only): its weights, "
                             "its model card's settings and counters, and the "
                             "X.discriminator.safetensors beside it")
    parser.add_argument("--d-warmup-kimg", type=finite_float, default=RunOptions.d_warmup_kimg,
                        help="with --init-from and no discriminator beside it, train D alone on "
                             "this many thousand images first (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=RunOptions.threads,
                        help="torch CPU threads per worker")
    parser.add_argument("--workers", type=int, default=RunOptions.workers,
                        help="data-parallel worker processes (on a busy machine, 2 workers x 1 "
                             "thread beat 1 x 2)")
    add_device(parser)
    parser.add_argument("--data-workers", type=int,
                        help="processes rendering portraits ahead of the training loop (default: "
                             "none on the CPU, all cores but two on a GPU)")
    parser.add_argument("--seed", type=int, help=f"random seed of the run (default: {defaults.seed})")
    parser.add_argument("--export", type=Path, default=DEFAULT_EXPORT,
                        help="where G_ema is exported periodically (default: %(default)s)")
    parser.add_argument("--no-export", action="store_true", help="do not export the generator")
    parser.add_argument("--export-minutes", type=finite_float, default=RunOptions.export_minutes,
                        help="export interval")
    parser.add_argument("--checkpoint-minutes", type=finite_float,
                        default=RunOptions.checkpoint_minutes, help="state save interval")
    parser.add_argument("--r1-gamma", type=finite_float, help=f"R1 weight (default: {defaults.r1_gamma})")
    parser.add_argument("--aux-weight", type=finite_float,
                        help="weight of the discriminator's label loss on reals (0 disables; default: "
                             f"{defaults.aux_weight})")
    parser.add_argument("--style-mixing", type=finite_float,
                        help=f"probability of style mixing (default: {defaults.style_mixing})")
    parser.add_argument("--lr", type=finite_float, help=f"Adam learning rate (default: {defaults.lr})")
    parser.add_argument("--ema-kimg", type=finite_float,
                        help="half-life of the exported generator's weight average, in thousands "
                             f"of images (default: {defaults.ema_kimg})")


# Command-line options that set a TrainSettings field (left out: the field's default).
SETTING_ARGUMENTS = ("seed", "batch", "r1_gamma", "aux_weight", "style_mixing", "lr", "ema_kimg")


def settings_from_args(args: argparse.Namespace) -> tuple[TrainSettings, RunOptions]:
    problems = [f"--{name.replace('_', '-')} must be positive"
                for name in ("minutes", "kimg", "batch", "threads", "workers", "export_minutes",
                             "checkpoint_minutes", "lr", "ema_kimg")
                if getattr(args, name) is not None and getattr(args, name) <= 0]
    if args.data_workers is not None and args.data_workers < 0:
        problems.append("--data-workers must be 0 or more")
    if args.d_warmup_kimg < 0:
        problems.append("--d-warmup-kimg must be 0 or more")
    if args.batch is not None and args.batch % 4 and args.batch > 4:
        problems.append("--batch must be a multiple of 4 (minibatch-std groups of 4)")
    if args.retune and all(getattr(args, name) is None for name in RETUNABLE):
        problems.append("--retune needs at least one of "
                        + ", ".join(f"--{name.replace('_', '-')}" for name in RETUNABLE))
    if problems:
        raise UserError("; ".join(problems))
    given = {name: getattr(args, name) for name in SETTING_ARGUMENTS if getattr(args, name) is not None}
    settings = TrainSettings(**given)
    options = RunOptions(
        run_dir=args.run_dir.expanduser(), minutes=args.minutes, kimg=args.kimg, resume=args.resume,
        retune=args.retune,
        init_from=args.init_from and args.init_from.expanduser(),
        export_path=None if args.no_export else args.export,
        threads=args.threads, workers=args.workers, checkpoint_minutes=args.checkpoint_minutes,
        export_minutes=args.export_minutes, device=args.device or RunOptions.device, data_workers=args.data_workers,
        d_warmup_kimg=args.d_warmup_kimg, given=frozenset(given))
    return settings, options
