import os
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Bitmap, Mask, Rect, Scene, SceneFormatError
from ganinterface.export.images import (
    contact_sheet,
    read_png_scene,
    resize,
    save_png,
    upscale,
)


def _image(height=12, width=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _scene():
    edit = FeatureEdit(layer="b16.conv1", channels=(3, 5), amount=-1.5,
                       mask=Mask(shapes=(Rect(0.1, 0.2, 0.4, 0.5, softness=0.3),)))
    return Scene(seed=42, truncation_psi=0.7, w=np.arange(8, dtype=np.float32), edits=(edit,))


def test_png_round_trips_pixels_and_scene(tmp_path):
    image, scene = _image(), _scene()
    save_png(tmp_path / "a.png", image, scene)
    with Image.open(tmp_path / "a.png") as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), image)
        # An independent reader (Pillow's own) sees the same JSON in the named chunk.
        assert Scene.from_json(png.text["ganinterface.scene"]) == scene
    assert read_png_scene(tmp_path / "a.png") == scene
    assert os.listdir(tmp_path) == ["a.png"]


def test_png_without_scene_reads_none(tmp_path):
    save_png(tmp_path / "plain.png", _image())
    assert read_png_scene(tmp_path / "plain.png") is None


def test_scene_larger_than_pillows_text_limit_round_trips(tmp_path):
    noise = np.random.default_rng(1).random((600, 600), dtype=np.float32)  # ~1.9 MB of base64
    scene = Scene(edits=(FeatureEdit("b8.conv0", (0,), Mask(shapes=(Bitmap(noise),)), 1.0),))
    save_png(tmp_path / "big.png", _image(), scene)
    assert read_png_scene(tmp_path / "big.png") == scene


def test_other_text_chunks_are_skipped(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "someone else")
    info.add_itxt("Comment", "hello", zip=True)
    info.add_itxt("ganinterface.scene", _scene().to_json())  # uncompressed this time
    Image.fromarray(_image()).save(tmp_path / "x.png", pnginfo=info)
    assert read_png_scene(tmp_path / "x.png") == _scene()


def test_malformed_scene_metadata_names_the_file(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("ganinterface.scene", '{"format": "ganinterface.scene", "version": 1, "seed": "x"}')
    Image.fromarray(_image()).save(tmp_path / "bad.png", pnginfo=info)
    with pytest.raises(SceneFormatError, match=r"bad\.png.*seed"):
        read_png_scene(tmp_path / "bad.png")


def test_corrupt_chunk_is_reported(tmp_path):
    save_png(tmp_path / "c.png", _image(), _scene())
    data = bytearray((tmp_path / "c.png").read_bytes())
    position = data.index(b"iTXt") + 40
    data[position] ^= 0xFF
    (tmp_path / "c.png").write_bytes(bytes(data))
    with pytest.raises(SceneFormatError, match=r"c\.png.*CRC"):
        read_png_scene(tmp_path / "c.png")


def test_truncated_and_non_png_files_are_reported(tmp_path):
    (tmp_path / "not.png").write_bytes(b"GIF89a....")
    with pytest.raises(SceneFormatError, match=r"not\.png: not a PNG"):
        read_png_scene(tmp_path / "not.png")
    save_png(tmp_path / "t.png", _image())
    (tmp_path / "t.png").write_bytes((tmp_path / "t.png").read_bytes()[:40])
    with pytest.raises(SceneFormatError, match="truncated"):
        read_png_scene(tmp_path / "t.png")


def test_compressed_chunk_with_bad_zlib_is_reported(tmp_path):
    save_png(tmp_path / "z.png", _image())
    raw = (tmp_path / "z.png").read_bytes()
    body = b"ganinterface.scene\0\x01\x00\0\0" + b"definitely not zlib"
    chunk = len(body).to_bytes(4, "big") + b"iTXt" + body + zlib.crc32(b"iTXt" + body).to_bytes(4, "big")
    (tmp_path / "z.png").write_bytes(raw[:33] + chunk + raw[33:])  # right after IHDR
    with pytest.raises(SceneFormatError, match=r"z\.png.*malformed"):
        read_png_scene(tmp_path / "z.png")


def test_save_png_scale_nearest_is_pixel_exact(tmp_path):
    image = _image(5, 3)
    save_png(tmp_path / "big.png", image, scale=4)
    with Image.open(tmp_path / "big.png") as png:
        saved = np.asarray(png.convert("RGB"))
    assert np.array_equal(saved, np.repeat(np.repeat(image, 4, axis=0), 4, axis=1))


def test_upscale_lanczos_is_smooth_and_keeps_mean():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, 4:] = 200
    big = upscale(image, 4, "lanczos")
    assert big.shape == (32, 32, 3)
    assert abs(float(big.mean()) - float(image.mean())) < 3
    row = big[16, :, 0].astype(int)
    assert len(set(row.tolist())) > 2  # intermediate values at the edge, unlike nearest


def test_resize_rejects_unknown_method_and_bad_images():
    with pytest.raises(ValueError, match="resampling"):
        resize(_image(), 4, 4, "cubic-ish")
    with pytest.raises(ValueError, match="uint8"):
        resize(_image().astype(np.float32), 4, 4)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        resize(np.zeros((4, 4), np.uint8), 4, 4)


def test_failed_save_leaves_no_file(tmp_path):
    with pytest.raises(ValueError):
        save_png(tmp_path / "x.png", np.zeros((4, 4, 4), np.uint8))
    assert os.listdir(tmp_path) == []


def _naive_sheet(frames, columns, gap, background):
    height, width = frames[0].shape[:2]
    rows = -(-len(frames) // columns)
    sheet = np.zeros((rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), np.uint8)
    sheet[..., 0], sheet[..., 1], sheet[..., 2] = background
    for y in range(sheet.shape[0]):
        for x in range(sheet.shape[1]):
            row, dy = divmod(y, height + gap)
            column, dx = divmod(x, width + gap)
            index = row * columns + column
            if dy < height and dx < width and index < len(frames):
                sheet[y, x] = frames[index][dy, dx]
    return sheet


@pytest.mark.parametrize("count, columns, gap", [(5, 3, 2), (4, None, 1), (3, 3, 0), (1, None, 4)])
def test_contact_sheet_matches_pixel_by_pixel_layout(count, columns, gap):
    frames = [_image(6, 4, seed=i) for i in range(count)]
    sheet = contact_sheet(frames, columns=columns, gap=gap, background=(10, 20, 30))
    expected_columns = columns or {4: 2, 1: 1}[count]
    assert np.array_equal(sheet, _naive_sheet(frames, expected_columns, gap, (10, 20, 30)))


def test_contact_sheet_labels_are_drawn_below_tiles():
    frames = [np.full((40, 30, 3), 128, np.uint8) for _ in range(3)]
    plain = contact_sheet(frames, columns=3, gap=2, background=(0, 0, 0))
    labelled = contact_sheet(frames, columns=3, gap=2, background=(0, 0, 0),
                             labels=["a very long label that cannot fit", "seed 2", "seed 3"])
    assert labelled.shape[0] > plain.shape[0] and labelled.shape[1] == plain.shape[1]
    assert np.array_equal(labelled[:40], plain[:40])  # the tiles themselves are untouched
    band = labelled[40:]
    for column in range(3):
        left = column * 32
        assert band[:, left:left + 30].max() > 200  # white text on black
    assert band[:, 30:32].max() == 0  # the long label was shortened, not spilled into the gap


def test_contact_sheet_rejects_mismatched_frames():
    with pytest.raises(ValueError, match="share one size"):
        contact_sheet([_image(4, 4), _image(4, 5)])
    with pytest.raises(ValueError, match="labels"):
        contact_sheet([_image()], labels=["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        contact_sheet([])
