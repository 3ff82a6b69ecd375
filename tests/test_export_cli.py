"""``ganinterface export``: existing PNGs into a contact sheet, GIF, MP4 or PNG sequence."""

import os

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from ganinterface.cli import main


def _write_images(folder, count, height=12, width=8):
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for index in range(count):
        image = np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)
        iio.imwrite(folder / f"img{index:02d}.png", image)
        images.append(image)
    return images


def _error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_contact_sheet_from_a_directory(tmp_path):
    images = _write_images(tmp_path / "in", 5)
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "sheet.png"), "--columns", "3",
                 "--gap", "0"]) == 0
    sheet = iio.imread(tmp_path / "sheet.png")
    assert sheet.shape == (24, 24, 3)
    assert np.array_equal(sheet[:12], np.concatenate(images[:3], axis=1))
    assert np.array_equal(sheet[12:, :16], np.concatenate(images[3:], axis=1))
    assert np.all(sheet[12:, 16:] == 0)


def test_contact_sheet_default_grid_and_labels(tmp_path):
    _write_images(tmp_path / "in", 4, height=40, width=40)
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "sheet.png"), "--labels"]) == 0
    sheet = iio.imread(tmp_path / "sheet.png")
    assert sheet.shape[1] == 2 * 40 + 2  # two columns for four images
    assert sheet.shape[0] > 2 * 40 + 2  # room for the labels


def test_gif_and_mp4_from_files_in_the_given_order(tmp_path):
    images = _write_images(tmp_path / "in", 3, height=16, width=16)
    files = [str(tmp_path / "in" / f"img{i:02d}.png") for i in (2, 0, 1)]
    assert main(["export", *files, "-o", str(tmp_path / "a.gif"), "--size", "32x32"]) == 0
    gif = iio.imread(tmp_path / "a.gif", index=None)[..., :3]
    assert gif.shape == (3, 32, 32, 3)
    expected = np.repeat(np.repeat(images[2], 2, 0), 2, 1)
    assert np.abs(gif[0].astype(int) - expected.astype(int)).mean() < 40  # noise images, 256 colours
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "a.mp4"), "--fps", "5"]) == 0
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "a.mp4"))
    meta = next(reader)
    assert meta["size"] == (16, 16) and sum(1 for _ in reader) == 3


def test_png_sequence_copies_pixels(tmp_path):
    images = _write_images(tmp_path / "in", 2)
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "seq") + "/"]) == 0
    assert sorted(os.listdir(tmp_path / "seq")) == ["frame_0000.png", "frame_0001.png"]
    assert np.array_equal(iio.imread(tmp_path / "seq" / "frame_0001.png"), images[1])


@pytest.mark.parametrize("setup, args, fragment", [
    ("none", ["missing.png"], "no such file"),
    ("empty-dir", ["empty"], "no .png"),
    ("mixed", ["in", "other.png"], "pass --size"),
    ("garbage", ["junk.png"], "not a readable image"),
])
def test_export_reports_bad_inputs_in_one_line(tmp_path, capsys, monkeypatch, setup, args, fragment):
    monkeypatch.chdir(tmp_path)
    if setup == "empty-dir":
        (tmp_path / "empty").mkdir()
    if setup == "mixed":
        _write_images(tmp_path / "in", 2)
        iio.imwrite(tmp_path / "other.png", np.zeros((5, 5, 3), np.uint8))
    if setup == "garbage":
        (tmp_path / "junk.png").write_bytes(b"no image here")
    before = sorted(os.listdir(tmp_path))
    assert main(["export", *args, "-o", "out.gif"]) == 1
    line = _error_line(capsys)
    assert line.startswith("ganinterface export: error: ") and fragment in line
    assert sorted(os.listdir(tmp_path)) == before


def test_export_refuses_fast_gifs_and_unknown_outputs(tmp_path, capsys):
    _write_images(tmp_path / "in", 2)
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "a.gif"), "--fps", "100"]) == 1
    assert "GIF" in _error_line(capsys)
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "a.avi")]) == 1
    assert "avi" in _error_line(capsys)
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_png_sequence_never_wipes_a_directory_of_other_files(tmp_path, capsys):
    _write_images(tmp_path / "in", 2)
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "in") + "/"]) == 1
    line = _error_line(capsys)
    assert "img00.png" in line and "new or empty directory" in line
    assert sorted(os.listdir(tmp_path / "in")) == ["img00.png", "img01.png"]


def test_export_says_what_it_wrote_unless_quiet(tmp_path, capsys):
    _write_images(tmp_path / "in", 6)
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "sheet.png"),
                 "--columns", "4"]) == 0
    assert capsys.readouterr().out == (f"wrote {tmp_path / 'sheet.png'} "
                                       "(a contact sheet of 6 images, 4 a row)\n")
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "frames") + os.sep]) == 0
    assert capsys.readouterr().out == (f"wrote 6 frames to {tmp_path / 'frames'}{os.sep} "
                                       "(frame_0000.png … frame_0005.png)\n")
    assert main(["export", str(tmp_path / "in"), "-o", str(tmp_path / "a.gif"), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert (tmp_path / "a.gif").is_file()
