"""``ganinterface train-demo``: train (or keep training) the built-in portrait generator."""

from __future__ import annotations

import argparse
import logging

from ganinterface.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from ganinterface.demo.train import add_arguments

    parser = subparsers.add_parser(
        "train-demo", help="train the built-in portrait generator (resumable)",
        description="Train ganinterface's StyleGAN2 portrait generator on procedurally drawn "
                    "portraits. State is saved to the run directory every few minutes and on "
                    "Ctrl-C/SIGTERM; running the command again continues where it stopped.")
    add_arguments(parser)
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from ganinterface.demo.train import TrainingError, run, settings_from_args

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        settings, options = settings_from_args(args)
        run(settings, options)
    except TrainingError as error:
        raise UserError(str(error)) from None
    return 0
