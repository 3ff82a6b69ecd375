"""Write a sequence of frames as a GIF, an H.264 MP4, a PNG sequence or one strip / contact sheet PNG.

Frames are pulled one at a time (from an iterable, or a function of the frame index), so a long
animation can be rendered while it is written.  Every format is written atomically: a cancelled job,
Ctrl-C or a frame that fails to render leaves no file behind (and an existing file untouched).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from ganinterface.atomic import atomic_directory, atomic_path, atomic_write
from ganinterface.export.images import check_rgb, contact_sheet, png_bytes, resize, save_png
from ganinterface.export.progress import CancelToken, ProgressCallback, no_progress

log = logging.getLogger(__name__)

FORMATS = ("gif", "mp4", "png-seq", "strip")
FrameSource = Union[Iterable[np.ndarray], Callable[[int], np.ndarray]]
AddFrame = Callable[[np.ndarray], None]
_FRAME_NAME = re.compile(r"frame_\d+\.png")
# GIF stores durations in hundredths of a second and players slow down frames shorter than 20 ms.
MAX_GIF_FPS = 50.0


def format_for_path(path: str | os.PathLike[str]) -> str:
    """Guess the format from the destination: .gif, .mp4, .png (a strip), else a PNG directory."""
    text = os.fspath(path)
    suffix = Path(text).suffix.lower()
    if suffix in (".gif", ".mp4"):
        return suffix[1:]
    if suffix == ".png":
        return "strip"
    if text.endswith(("/", os.sep)) or suffix == "" or Path(text).is_dir():
        return "png-seq"
    raise ValueError(f"cannot tell the format of {text!r} from its extension "
                     "(use .gif, .mp4, .png for a strip, or a directory for a PNG sequence)")


def export_frames(frames: FrameSource, path: str | os.PathLike[str], fmt: str | None = None, *,
                  fps: float = 24.0, size: tuple[int, int] | None = None, count: int | None = None,
                  resample: str = "lanczos", columns: int | None = None, gap: int = 0,
                  progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> Path:
    """Write ``frames`` (uint8 (H, W, 3) each) to ``path`` and return the path written.

    ``frames`` is an iterable, or a function ``i -> frame`` called for i in range(count).
    ``size`` (width, height) resizes every frame with ``resample`` ("lanczos" or "nearest").
    ``columns`` and ``gap`` lay out the "strip" format (default: one row).
    ``progress(done, total)`` is called after each frame (total 0 when unknown); ``cancel`` is checked
    before each frame and raises ``Cancelled``.  Every frame must have the size of the first.
    """
    fmt = fmt or format_for_path(path)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if fmt == "gif" and fps > MAX_GIF_FPS:
        raise ValueError(f"GIF frame rates above {MAX_GIF_FPS:g} fps play back slower in most viewers; "
                         f"got {fps:g}")
    if size is not None and (size[0] < 1 or size[1] < 1):
        raise ValueError(f"size must be positive, got {size[0]} × {size[1]} px")
    total = _frame_total(frames, count)
    progress = progress or no_progress
    writer = _WRITERS[fmt](Path(path), fps=fps, total=total, columns=columns, gap=gap)
    with writer as add_frame:
        written = 0
        first_shape: tuple[int, ...] | None = None
        for frame in _pull_frames(frames, count, cancel):
            frame = check_rgb(frame, f"frame {written}")
            if size is not None:
                frame = resize(frame, size[0], size[1], resample)
            first_shape = first_shape or frame.shape
            if frame.shape != first_shape:
                raise ValueError(f"frame {written} is {frame.shape[1]} × {frame.shape[0]} px, the first "
                                 f"was {first_shape[1]} × {first_shape[0]} px")
            add_frame(frame)
            written += 1
            progress(written, total)
        if written == 0:
            raise ValueError("there are no frames to export")
        if cancel is not None:
            cancel.raise_if_cancelled()
    return Path(path)


def _frame_total(frames: FrameSource, count: int | None) -> int:
    if callable(frames):
        if count is None or count < 0:
            raise ValueError("a frame function needs count, the number of frames")
        return count
    if count is not None:
        return count
    return len(frames) if hasattr(frames, "__len__") else 0


def _pull_frames(frames: FrameSource, count: int | None,
                 cancel: CancelToken | None) -> Iterator[np.ndarray]:
    """Yield at most ``count`` frames, checking ``cancel`` before asking for each one."""
    if callable(frames):
        render = frames
        frames = (render(index) for index in range(count or 0))
    remaining = iter(itertools.islice(frames, count))
    while True:
        if cancel is not None:
            cancel.raise_if_cancelled()
        frame = next(remaining, None)
        if frame is None:
            return
        yield frame


# ---- writers: context managers yielding ``add_frame``; leaving by an exception writes nothing ----

@contextlib.contextmanager
def _gif_writer(path: Path, *, fps: float, **_: object) -> Iterator[AddFrame]:
    """A palette per frame, loops forever.

    Palettes come from Pillow's fast octree: on a GAN frame with tens of thousands of distinct
    colours it is ~100x faster than median cut (ms instead of 0.4-1.5 s per 256x512 frame) for a
    slightly larger error (mean 1.9 instead of 1.4 levels on an enlarged portrait); no dithering,
    so flat colours stay flat.

    Pillow stores a run of identical frames once, with their durations added, so the timing holds
    even when the decoded frame count is lower.
    """
    frames: list[Image.Image] = []
    yield lambda frame: frames.append(
        Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.FASTOCTREE))
    if not frames:
        return
    with atomic_write(path) as handle:
        frames[0].save(handle, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                       duration=gif_durations(len(frames), fps))


def gif_durations(frame_count: int, fps: float) -> list[int]:
    """Per-frame durations in ms, multiples of 10 ms, whose running sum tracks ``i / fps``.

    24 fps becomes 40, 40, 50, 40, 40, 50 ... ms instead of a uniform 40 ms (25 fps).
    """
    ticks = [round(100 * index / fps) for index in range(frame_count + 1)]
    return [10 * (ticks[index + 1] - ticks[index]) for index in range(frame_count)]


@contextlib.contextmanager
def _png_sequence_writer(path: Path, *, total: int, **_: object) -> Iterator[AddFrame]:
    """frame_0000.png, ... in a directory that appears complete; an earlier sequence there is
    replaced, but a directory holding anything else is refused rather than wiped."""
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if not _FRAME_NAME.fullmatch(p.name))
        if others:
            raise FileExistsError(f"{path} already holds other files ({others[0]}, ...); "
                                  "choose a new or empty directory for the frames")
    digits = max(4, len(str(max(total - 1, 0))))
    with atomic_directory(path) as directory:
        names = (directory / f"frame_{index:0{digits}d}.png" for index in range(10 ** 9))

        def add_frame(frame: np.ndarray) -> None:
            next(names).write_bytes(png_bytes(frame))

        yield add_frame


@contextlib.contextmanager
def _strip_writer(path: Path, *, columns: int | None, gap: int, **_: object) -> Iterator[AddFrame]:
    frames: list[np.ndarray] = []
    yield frames.append
    if frames:
        save_png(path, contact_sheet(frames, columns=columns or len(frames), gap=gap))


@contextlib.contextmanager
def _mp4_writer(path: Path, *, fps: float, **_: object) -> Iterator[AddFrame]:
    with atomic_path(path) as temporary:
        encoder = H264Encoder(temporary, fps)
        try:
            yield encoder.add
            encoder.finish()
        finally:
            encoder.kill()


_WRITERS = {"gif": _gif_writer, "mp4": _mp4_writer, "png-seq": _png_sequence_writer,
            "strip": _strip_writer}


class H264Encoder:
    """Feed RGB frames to the ffmpeg bundled with imageio-ffmpeg: libx264, yuv420p, MP4.

    yuv420p needs even width and height; odd sizes are padded by repeating the last row / column,
    so the picture itself is never resampled.  ffmpeg starts with the first frame (its size).
    """

    def __init__(self, path: Path, fps: float, crf: int = 18) -> None:
        self.path, self.fps, self.crf = path, fps, crf
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # ffmpeg's messages, for the error text

    def _start(self, width: int, height: int) -> subprocess.Popen[bytes]:
        import imageio_ffmpeg

        rate = Fraction(self.fps).limit_denominator(1001)
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
                   "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                   "-r", str(rate), "-i", "pipe:0", "-an", "-c:v", "libx264", "-preset", "medium",
                   "-crf", str(self.crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart",
                   "-f", "mp4", os.fspath(self.path)]
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=self._log, **_outside_ctrl_c())

    def add(self, frame: np.ndarray) -> None:
        frame = pad_to_even(frame)
        if self._process is None:
            self._process = self._start(width=frame.shape[1], height=frame.shape[0])
        try:
            self._process.stdin.write(np.ascontiguousarray(frame).tobytes())  # type: ignore[union-attr]
        except BrokenPipeError:
            raise OSError(f"ffmpeg stopped while writing an MP4: {self._error_text()}") from None

    def finish(self) -> None:
        if self._process is None:
            return
        self._process.stdin.close()  # type: ignore[union-attr]
        code = self._process.wait()
        if code != 0:
            raise OSError(f"ffmpeg failed (exit code {code}) writing an MP4: {self._error_text()}")

    def kill(self) -> None:
        """Stop ffmpeg at once (after ``finish`` this only tidies up)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._process is not None and self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        self._log.close()

    def _error_text(self) -> str:
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no message"


def _outside_ctrl_c() -> dict[str, object]:
    """Keep Ctrl-C from reaching ffmpeg: Python gets KeyboardInterrupt, kills ffmpeg, removes the file."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Repeat the last row and/or column so both sides are even (what yuv420p requires)."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
