"""The training images: an endless, deterministic stream of rendered portraits, optionally
rendered ahead in a pool of processes, and the conversions between images and tensors."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ganinterface.demo.portraits import render_batch

# Training images come from seeds far above anything a user or evaluation picks by hand.
DATA_SEED_BASE = 10_000_000

DataSource = Callable[[Sequence[int], int, int], tuple[np.ndarray, list[dict[str, Any]]]]

# Portraits drawn on the fly by a module-level function: worker processes receive it by name, and
# importing its module there does not import torch.
DEFAULT_DATA_SOURCE: DataSource = render_batch


class PrefetchingSource:
    """Renders the batches a run will ask for next in a pool of processes, so a GPU never waits.

    Requests are expected to walk the seed stream in equal strides (as ``Trainer.next_reals`` does);
    a request that was not foreseen (after a resume, say) is rendered at once and the queue restarts
    from it, so the images returned are always exactly those asked for.
    """

    def __init__(self, render: DataSource, processes: int, depth: int | None = None):
        self.render = render
        self.depth = depth or 2 * processes
        # spawn, not fork: forking a process that runs torch's threads (or CUDA) is unsafe
        self.pool = concurrent.futures.ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn"))
        self.queue: list[tuple[tuple[int, ...], Any]] = []

    def __call__(self, seeds: Sequence[int], height: int, width: int
                 ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        wanted = tuple(seeds)
        if self.queue and self.queue[0][0] == wanted:
            result = self.queue.pop(0)[1].result()
        else:
            self.queue.clear()
            result = self.render(wanted, height, width)
        self._top_up(wanted, height, width)
        return result

    def _top_up(self, last: tuple[int, ...], height: int, width: int) -> None:
        stride = len(last)
        if self.queue:
            last = self.queue[-1][0]
        while len(self.queue) < self.depth:
            last = tuple(seed + stride for seed in last)
            self.queue.append((last, self.pool.submit(self.render, last, height, width)))

    def close(self) -> None:
        self.queue.clear()
        self.pool.shutdown(wait=False, cancel_futures=True)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def tensor_to_images(images: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) nominally in [-1, 1] -> uint8 (N, H, W, 3), as NVlabs saves samples."""
    scaled = (images.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().cpu().numpy()
