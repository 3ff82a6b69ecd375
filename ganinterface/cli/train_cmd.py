"""``ganinterface train-demo``: train (or keep training) the built-in portrait generator."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ganinterface.cli import UserError
from ganinterface.cli.options import add_device, finite_float
from ganinterface.demo.training import (DEFAULT_EXPORT, DEFAULT_RUN_DIR, RETUNABLE, RunOptions,
                                        TrainingError, TrainSettings, run)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-demo", help="train the built-in portrait generator (resumable)",
        description="Train ganinterface's StyleGAN2 portrait generator on procedurally drawn "
                    "portraits. State is saved to the run directory every few minutes and on "
                    "Ctrl-C/SIGTERM; running the command again continues where it stopped.")
    add_arguments(parser)
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        settings, options = settings_from_args(args)
        run(settings, options)
    except TrainingError as error:
        raise UserError(str(error)) from None
    return 0


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
