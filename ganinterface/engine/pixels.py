"""A generator's raw output as pixels, and tensors as host arrays that own their memory."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

Tensor = torch.Tensor


def uint8_pixels(raw: Tensor) -> Tensor:
    """(C, H, W) in nominal [-1, 1] -> (H, W, 3) uint8 on raw's device, exactly as NVlabs
    gen_images.py converts."""
    image = (raw.permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    if image.shape[2] == 1:
        image = image.repeat(1, 1, 3)
    return image[:, :, :3]


def to_uint8_image(raw: Tensor) -> np.ndarray:
    """``uint8_pixels`` as a numpy array."""
    return uint8_pixels(raw).cpu().numpy()


def host_float32(tensor: Tensor) -> np.ndarray:
    """A float32 numpy copy that owns its memory."""
    return np.array(tensor.detach().to(torch.float32).cpu().numpy(), dtype=np.float32, copy=True)


def host_arrays(tensors: Sequence[Tensor], device: torch.device) -> list[np.ndarray]:
    """numpy copies (owning their memory) of tensors on ``device``.  From a CUDA device they go
    through pinned buffers, copied asynchronously and waited for once: one synchronisation per
    frame, for the image, however many features come with it."""
    if device.type != "cuda":
        return [np.array(t.cpu().numpy(), copy=True) for t in tensors]
    staged = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t, non_blocking=True)
              for t in tensors]
    torch.cuda.current_stream(device).synchronize()
    return [np.array(t.numpy(), copy=True) for t in staged]
