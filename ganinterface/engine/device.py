"""Choosing where the generator runs (CUDA, then Apple MPS, then the CPU), and telling when it fails."""

from __future__ import annotations

import ctypes
import functools
import sys
import threading

import torch

DEVICE_KINDS = ("cpu", "cuda", "mps")


class DeviceError(ValueError):
    """The requested device does not exist on this machine; the message says which ones do."""


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.insert(-1, "mps")
    return devices


def pick_device(preferred: str | None = None) -> torch.device:
    """The best device available, or ``preferred`` ("cpu", "cuda", "cuda:1", "mps") if it exists."""
    available = available_devices()
    if preferred is None or preferred == "auto":
        return torch.device(available[0])
    kind, _, index = preferred.partition(":")
    if kind not in DEVICE_KINDS or (index and (kind != "cuda" or not index.isdigit())):
        raise DeviceError(f"unknown device {preferred!r}; use one of: {', '.join(DEVICE_KINDS)} "
                          "(or cuda:N)")
    if kind not in available:
        raise DeviceError(f"device {preferred!r} is not available on this machine; "
                          f"available: {', '.join(available)}")
    if index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"device {preferred!r} does not exist; this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
    return torch.device(preferred)


def serial_torch_on_this_thread() -> int:
    """From now on, torch ops called on this thread run on one core; other threads keep their count.
    Returns this thread's count before (``torch.set_num_threads`` on it puts it back).

    For a GUI thread whose renders run on workers but which maps a seed now and then: one parallel
    op would give it a team of OpenMP threads for the rest of its life, and with more teams than
    cores every worker's ops wait on wake-ups (see ``engine.scheduler.IDLE_THREAD_SECONDS``).
    ``torch.set_num_threads`` sets the calling thread's count and the one threads take when they
    first use torch; a short-lived thread puts the latter back.
    """
    threads = torch.get_num_threads()  # settles this thread's own count first
    if threads > 1:
        torch.set_num_threads(1)
        restore = threading.Thread(target=torch.set_num_threads, args=(threads,), name="torch-threads")
        restore.start()
        restore.join()
    return threads


# What a failed render says about its device.  Out of memory may pass (caches freed, a smaller
# model, another program done); a failed device does not: its context is gone until the process ends.
OUT_OF_MEMORY = "out of memory"
DEVICE_FAILED = "failed"
_OUT_OF_MEMORY_SIGNS = ("out of memory", "can't allocate memory", "not enough memory")
_FAILURE_SIGNS = ("CUDA error", "device-side assert", "CUBLAS_STATUS", "CUDNN_STATUS", "cuDNN error",
                  "illegal memory access", "unspecified launch failure",
                  "command buffer exited with error")  # the last: Metal (MPS)


def device_trouble(error: BaseException) -> str | None:
    """OUT_OF_MEMORY or DEVICE_FAILED when ``error`` is the device's, None for any other error (a
    bad edit, a model's own bug).  CUDA, MPS and the CPU allocator say so only in their messages."""
    if isinstance(error, torch.OutOfMemoryError):
        return OUT_OF_MEMORY
    if not isinstance(error, RuntimeError):
        return None
    text = str(error)
    if any(sign in text for sign in _OUT_OF_MEMORY_SIGNS):
        return OUT_OF_MEMORY
    if isinstance(error, torch.AcceleratorError) or any(sign in text for sign in _FAILURE_SIGNS):
        return DEVICE_FAILED
    return None


def free_device_memory(device: torch.device) -> None:
    """Hand the blocks torch's allocator keeps cached on ``device`` back to it (for other programs,
    and for allocations of other sizes)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


# glibc's malloc gives every block over 128 KB its own mapping and returns it to the system when
# freed, so each render's activations (1 MB and up) arrive as fresh pages the kernel must fault in
# and zero: measured 9% of a built-in render in a batch.  Blocks up to 32 MB (glibc's ceiling for
# the setting) now come from the heap, and up to 256 MB of freed heap is kept for the next render.
_MALLOC_SETTINGS = {-3: 32 * 2**20, -1: 256 * 2**20}  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD


@functools.cache
def keep_freed_memory() -> bool:
    """Let this process reuse the memory its tensors free instead of giving it back to the system
    after each render (glibc on Linux; elsewhere nothing changes).  True if the setting took.
    Set once per process, however many renderers ask."""
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # this process's C library's
    if mallopt is None:  # not glibc (musl has none)
        return False
    return all(mallopt(option, value) == 1 for option, value in _MALLOC_SETTINGS.items())


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (timings; the CPU runs synchronously anyway)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# The fast mode's precision: float16 keeps 3 more mantissa bits than bfloat16 (8 times smaller
# rounding steps), so it is preferred wherever the device runs it fast and the model allows it.
_ACCURACY_ORDER = (torch.float16, torch.bfloat16)
# CPU instructions that make oneDNN's convolutions in a reduced precision about twice as fast as
# in float32 (torch.cpu's own checks); without them the reduced types are slower, not faster.
_CPU_FAST = {torch.bfloat16: ("_is_avx512_bf16_supported", "_is_amx_tile_supported"),
             torch.float16: ("_is_amx_fp16_supported",)}


def fast_dtype(device: torch.device, allowed: tuple[torch.dtype, ...]) -> torch.dtype | None:
    """The reduced precision for drafts on ``device``: the most accurate of ``allowed`` (a
    generator's ``fast_dtypes``) that the device runs faster than float32; None if none.

    GPUs run half precision fast (CUDA bfloat16 from Ampere on); a CPU needs AVX-512 BF16 or AMX
    for bfloat16, AMX-FP16 for float16."""
    for dtype in _ACCURACY_ORDER:
        if dtype in allowed and _runs_fast(device.type, dtype):
            return dtype
    return None


def _runs_fast(device_type: str, dtype: torch.dtype) -> bool:
    if device_type == "cuda":
        return dtype == torch.float16 or torch.cuda.is_bf16_supported()
    if device_type == "mps":
        return dtype == torch.float16
    return any(getattr(torch.cpu, check, lambda: False)() for check in _CPU_FAST[dtype])
