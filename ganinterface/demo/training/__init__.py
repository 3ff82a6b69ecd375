"""Resumable, deterministic GAN training of the built-in portrait generator, on a CPU or a GPU.

Trains ganinterface's own StyleGAN2 generator (our numerics, NVlabs state-dict keys) against
``ResidualDiscriminator`` on portraits drawn on the fly by ``demo.portraits.render_batch`` (an endless,
deterministic stream of seeds, so there is no data set on disk and no overfitting).

Made affordable on two cores by: a small generator (channels 128 -> 32), bfloat16 autocast and
channels_last, one generator forward per step, no path-length regulariser, an optional auxiliary
loss in which the discriminator also predicts the renderer's labels (mouth open, hair band) on real
images, and optional data-parallel worker processes.  ``ganinterface train-demo`` is its command.

    settings.py  what decides the weights, how one invocation runs, the retune rules
    data.py      the stream of rendered portraits, rendering ahead, images <-> tensors
    trainer.py   networks, losses, steps, the G average, random states
    state.py     the resumable state file and the warm start from an export
    outputs.py   sample sheet, model card, exported generator and discriminator
    hardware.py  where the run trains, in words
    loop.py      ``run``: the loop, worker processes, stopping on a signal
"""

from ganinterface.demo.training.loop import run
from ganinterface.demo.training.settings import (DEFAULT_EXPORT, DEFAULT_RUN_DIR, RETUNABLE,
                                                 RunOptions, TrainingError, TrainSettings)
from ganinterface.demo.training.trainer import Trainer

__all__ = ["DEFAULT_EXPORT", "DEFAULT_RUN_DIR", "RETUNABLE", "RunOptions", "Trainer",
           "TrainSettings", "TrainingError", "run"]
