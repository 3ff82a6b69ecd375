import os

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from ganinterface.export.animation import (
    export_frames,
    format_for_path,
    gif_durations,
    pad_to_even,
)
from ganinterface.export.progress import CancelToken, Cancelled


def _frame(index, height=64, width=128):
    """A smooth background plus a bright block whose position says which frame this is."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (x * 200 // max(width - 1, 1)).astype(np.uint8)
    frame[..., 1] = (y * 200 // max(height - 1, 1)).astype(np.uint8)
    frame[..., 2] = 90
    side = max(4, min(height, width) // 4)
    left = (index * 7) % max(width - side, 1)
    top = (index * 3) % max(height - side, 1)
    frame[top:top + side, left:left + side] = (250, 240, 30)
    return frame


def _frames(count, height=64, width=128):
    return [_frame(i, height, width) for i in range(count)]


def _decode_mp4(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(data, np.uint8).reshape(height, width, 3) for data in reader]
    return np.stack(frames), meta


def _mean_abs_error(a, b):
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


def _assert_each_frame_matches_its_own(decoded, frames, tolerance):
    assert len(decoded) == len(frames)
    for index, frame in enumerate(frames):
        own = _mean_abs_error(decoded[index], frame)
        assert own < tolerance, f"frame {index}: mean abs error {own:.2f}"
        others = [_mean_abs_error(decoded[index], other) for j, other in enumerate(frames) if j != index]
        assert own < min(others), f"frame {index} looks more like another frame"


def test_gif_decodes_to_the_input_frames_and_loops(tmp_path):
    frames = _frames(10)
    written = export_frames(frames, tmp_path / "anim.gif", fps=24)
    assert written == tmp_path / "anim.gif"
    decoded = iio.imread(written, index=None)[..., :3]
    assert decoded.shape == (10, 64, 128, 3)
    _assert_each_frame_matches_its_own(decoded, frames, tolerance=4.0)
    with Image.open(written) as gif:
        assert gif.info["loop"] == 0  # loop forever
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert sum(durations) == pytest.approx(1000 * 10 / 24, abs=10)
    assert os.listdir(tmp_path) == ["anim.gif"]


def test_gif_durations_track_the_frame_rate():
    durations = gif_durations(48, 24)
    assert all(d % 10 == 0 and d in (40, 50) for d in durations)
    elapsed = np.cumsum(durations)
    for frame in range(48):
        assert abs(elapsed[frame] - 1000 * (frame + 1) / 24) <= 5
    assert gif_durations(5, 10) == [100] * 5


def test_mp4_is_h264_yuv420p_and_close_to_the_input(tmp_path):
    frames = _frames(12)
    export_frames(frames, tmp_path / "anim.mp4", fps=24)
    decoded, meta = _decode_mp4(tmp_path / "anim.mp4")
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == pytest.approx(24)
    assert decoded.shape == (12, 64, 128, 3)
    _assert_each_frame_matches_its_own(decoded, frames, tolerance=5.0)
    assert os.listdir(tmp_path) == ["anim.mp4"]


def test_mp4_with_odd_size_is_padded_not_resampled(tmp_path):
    frames = _frames(6, height=33, width=47)
    export_frames(frames, tmp_path / "odd.mp4", fps=12)
    decoded, _meta = _decode_mp4(tmp_path / "odd.mp4")
    assert decoded.shape == (6, 34, 48, 3)
    _assert_each_frame_matches_its_own(decoded[:, :33, :47], frames, tolerance=6.0)
    # the padding repeats the last row / column
    assert _mean_abs_error(decoded[:, 33], decoded[:, 32]) < 6.0


def test_pad_to_even_repeats_edges():
    frame = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    padded = pad_to_even(frame)
    assert padded.shape == (4, 6, 3)
    assert np.array_equal(padded[:3, :5], frame)
    assert np.array_equal(padded[3, :5], frame[2]) and np.array_equal(padded[:3, 5], frame[:, 4])
    even = np.zeros((4, 6, 3), np.uint8)
    assert pad_to_even(even) is even


def test_size_resizes_every_frame(tmp_path):
    export_frames(_frames(3), tmp_path / "small.gif", fps=10, size=(64, 32))
    assert iio.imread(tmp_path / "small.gif", index=None).shape[:3] == (3, 32, 64)
    export_frames(_frames(3, 16, 8), tmp_path / "big.png", size=(32, 64), resample="nearest")
    strip = iio.imread(tmp_path / "big.png")
    expected = np.concatenate([np.repeat(np.repeat(f, 4, 0), 4, 1) for f in _frames(3, 16, 8)], axis=1)
    assert np.array_equal(strip, expected)


def test_png_sequence_is_pixel_exact(tmp_path):
    frames = _frames(5, 20, 10)
    export_frames(frames, tmp_path / "frames", fmt="png-seq")
    names = sorted(os.listdir(tmp_path / "frames"))
    assert names == [f"frame_{i:04d}.png" for i in range(5)]
    for name, frame in zip(names, frames):
        assert np.array_equal(iio.imread(tmp_path / "frames" / name), frame)
    assert os.listdir(tmp_path) == ["frames"]


def test_strip_is_frames_side_by_side_or_a_grid(tmp_path):
    frames = _frames(4, 10, 6)
    export_frames(frames, tmp_path / "strip.png")
    assert np.array_equal(iio.imread(tmp_path / "strip.png"), np.concatenate(frames, axis=1))
    export_frames(frames, tmp_path / "grid.png", columns=2)
    grid = np.concatenate([np.concatenate(frames[:2], 1), np.concatenate(frames[2:], 1)], 0)
    assert np.array_equal(iio.imread(tmp_path / "grid.png"), grid)


def test_frame_function_is_called_once_per_index_with_progress(tmp_path):
    calls, reports = [], []

    def render(index):
        calls.append(index)
        return _frame(index, 16, 16)

    export_frames(render, tmp_path / "f.gif", count=4, fps=8,
                  progress=lambda done, total: reports.append((done, total)))
    assert calls == [0, 1, 2, 3]
    assert reports == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert iio.imread(tmp_path / "f.gif", index=None).shape[0] == 4


def test_generator_source_reports_unknown_total(tmp_path):
    reports = []
    export_frames((_frame(i, 8, 8) for i in range(3)), tmp_path / "g", fmt="png-seq",
                  progress=lambda done, total: reports.append((done, total)))
    assert reports == [(1, 0), (2, 0), (3, 0)]


DESTINATIONS = [("anim.gif", "gif"), ("anim.mp4", "mp4"), ("frames", "png-seq"), ("strip.png", "strip")]


@pytest.mark.parametrize("name, fmt", DESTINATIONS)
def test_cancel_midway_leaves_nothing_and_renders_no_more(tmp_path, name, fmt):
    token, calls = CancelToken(), []

    def render(index):
        calls.append(index)
        return _frame(index, 32, 16)

    def progress(done, total):
        if done == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        export_frames(render, tmp_path / name, fmt, count=10, fps=10, progress=progress, cancel=token)
    assert calls == [0, 1, 2]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name, fmt", DESTINATIONS)
def test_failing_frame_source_leaves_nothing(tmp_path, name, fmt):
    def render(index):
        if index == 4:
            raise RuntimeError("render failed")
        return _frame(index, 32, 16)

    with pytest.raises(RuntimeError, match="render failed"):
        export_frames(render, tmp_path / name, fmt, count=8, fps=10)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name, fmt", DESTINATIONS)
def test_cancelled_export_keeps_the_previous_file(tmp_path, name, fmt):
    export_frames(_frames(2, 16, 16), tmp_path / name, fmt, fps=10)
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        export_frames(_frames(5, 16, 16), tmp_path / name, fmt, fps=10, cancel=token)
    after = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert after == before


def test_frames_of_different_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="frame 1 is 8 × 8 px, the first was 16 × 16 px"):
        export_frames([_frame(0, 16, 16), _frame(1, 8, 8)], tmp_path / "x.mp4")
    assert os.listdir(tmp_path) == []


def test_ffmpeg_failure_is_reported_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: "false")
    with pytest.raises(OSError, match="ffmpeg"):
        export_frames(_frames(30, 64, 64), tmp_path / "x.mp4", fps=10)
    assert os.listdir(tmp_path) == []


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        export_frames([], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="count"):
        export_frames(lambda i: _frame(i), tmp_path / "x.gif")
    with pytest.raises(ValueError, match="fps"):
        export_frames(_frames(1), tmp_path / "x.gif", fps=0)
    with pytest.raises(ValueError, match="GIF frame rates"):
        export_frames(_frames(1), tmp_path / "x.gif", fps=60)
    with pytest.raises(ValueError, match="format"):
        export_frames(_frames(1), tmp_path / "x.gif", fmt="webm")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("path, fmt", [("a.GIF", "gif"), ("b.mp4", "mp4"), ("c.png", "strip"),
                                       ("frames/", "png-seq"), ("frames", "png-seq")])
def test_format_for_path(path, fmt):
    assert format_for_path(path) == fmt


def test_format_for_path_refuses_unknown_extensions():
    with pytest.raises(ValueError, match="webm"):
        format_for_path("clip.webm")


def test_png_sequence_replaces_an_old_sequence_but_never_other_files(tmp_path):
    target = tmp_path / "frames"
    export_frames(_frames(4, 8, 8), target, "png-seq")
    export_frames(_frames(2, 8, 8), target, "png-seq")
    assert sorted(os.listdir(target)) == ["frame_0000.png", "frame_0001.png"]
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        export_frames(_frames(2, 8, 8), target, "png-seq")
    assert sorted(os.listdir(target)) == ["frame_0000.png", "frame_0001.png", "notes.txt"]
    assert os.listdir(tmp_path) == ["frames"]


def test_gif_of_many_colour_frames_is_quick(tmp_path):
    """Median-cut palettes took ~1.5 s per frame like these; the octree takes milliseconds."""
    import time

    y, x = np.mgrid[0:512, 0:256]
    frames = [np.stack([(x + i) % 256, (y // 2 + i) % 256, np.full_like(x, 100)], -1).astype(np.uint8)
              for i in range(4)]
    started = time.perf_counter()
    export_frames(frames, tmp_path / "many.gif", fps=10)
    assert time.perf_counter() - started < 3.0
    decoded = iio.imread(tmp_path / "many.gif", index=None)[..., :3]
    assert _mean_abs_error(decoded, np.stack(frames)) < 4.0
