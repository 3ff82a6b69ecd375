"""The edit kinds' layer hooks touch only the chosen channels inside the mask's bounding box, in the
activation's own dtype and memory format: each gives what a straightforward dense computation over
the whole map (written here) gives."""

import dataclasses

import numpy as np
import pytest
import torch

from ganinterface.engine import kinds
from ganinterface.engine.kinds import FeatureCopy, FeatureEdit, RegionResample
from ganinterface.engine.kinds import base as kinds_base
from ganinterface.engine.kinds.base import Placement, Region, channel_runs
from ganinterface.engine.kinds.feature_copy import copy_sources
from ganinterface.engine.masks import rasterize_layer
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Mask, Rect, Scene, Stroke
from tiny_models import tiny_stylegan2

LAYER = "b16.conv0"  # 16 x 8, 4 channels
MASKS = {
    "inside": Mask((Rect(0.3, 0.2, 0.6, 0.5, softness=0.4),)),
    "whole map": Mask((Rect(-0.1, -0.1, 1.1, 1.1),)),
    "top left corner": Mask((Rect(-0.2, -0.2, 0.4, 0.3, softness=0.5),)),
    "across the right edge": Mask((Stroke(((0.6, 0.9), (1.2, 0.7)), radius=0.1, softness=0.3),)),
    "bottom row only": Mask((Rect(0.0, 0.97, 1.0, 1.0),)),
}


class _Context:
    """The kinds' context for one sample, without a renderer: masks as rasterised, another seed's
    features a fixed random map."""

    def __init__(self, generator):
        self.generator, self.device = generator, torch.device("cpu")
        info = generator.layers[generator.layer_index(LAYER)]
        self.other = torch.randn(1, info.channels, info.height, info.width)

    def placement(self, mask, anchor, layer):
        info = self.generator.layers[layer]
        return Placement((mask,), rasterize_layer(mask, info.height, info.width, info.margin)[None])

    def features_of(self, ws, layer):
        return self.other, "other"

    def other_ws(self, seed):
        return torch.zeros(self.generator.num_ws, self.generator.w_dim)


@pytest.fixture(scope="module")
def generator():
    return tiny_stylegan2()


def _raster(generator, mask):
    info = generator.layers[generator.layer_index(LAYER)]
    return torch.from_numpy(rasterize_layer(mask, info.height, info.width, info.margin))


def _dense(generator, edit, x, context):
    """The edit over the whole map, in float32: what the hook must give."""
    x = x.float()
    raster = _raster(generator, edit.mask)
    if edit.kind == "feature":
        out = x.clone()
        out[:, list(edit.channels)] += edit.amount * raster
        return out
    if edit.kind == "feature_copy":
        info = generator.layers[generator.layer_index(LAYER)]
        grid = torch.from_numpy(copy_sources(edit, edit.mask, info.height, info.width))[None]
        source = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                                 align_corners=False)
        return x + edit.amount * raster * (source - x)
    return x + raster * (context.other - x)


def _edits(mask):
    return {"feature": FeatureEdit(LAYER, (0, 2, 3), mask, -1.7),
            "feature_copy": FeatureCopy(LAYER, mask, scale=0.6, offset=(0.1, -0.05), amount=0.8),
            "region_resample": RegionResample(LAYER, mask, seed=4)}


def _activation(generator, memory_format):
    info = generator.layers[generator.layer_index(LAYER)]
    return torch.randn(1, info.channels, info.height, info.width).contiguous(
        memory_format=memory_format)


def _hook(generator, edit, context):
    hooks = kinds.layer_hooks([edit], context)
    assert list(hooks) == [generator.layer_index(LAYER)]
    return hooks[generator.layer_index(LAYER)]


@pytest.mark.parametrize("mask_name", sorted(MASKS))
@pytest.mark.parametrize("kind", ["feature", "feature_copy", "region_resample"])
@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format],
                         ids=["channels_last", "contiguous"])
def test_hooks_give_the_dense_computation(generator, kind, mask_name, memory_format):
    context = _Context(generator)
    edit = _edits(MASKS[mask_name])[kind]
    x = _activation(generator, memory_format)
    expected = _dense(generator, edit, x, context)
    out = _hook(generator, edit, context).apply(x.clone())
    assert out.is_contiguous(memory_format=memory_format)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["feature", "feature_copy", "region_resample"])
def test_hooks_work_in_the_activations_dtype(generator, kind):
    context = _Context(generator)
    edit = _edits(MASKS["across the right edge"])[kind]
    x = _activation(generator, torch.channels_last).to(torch.bfloat16)
    out = _hook(generator, edit, context).apply(x.clone())
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out.float(), _dense(generator, edit, x, context), rtol=2e-2, atol=3e-2)


@pytest.mark.parametrize("kind", ["feature", "feature_copy", "region_resample"])
def test_empty_masks_and_masks_off_the_map_add_no_hook(generator, kind):
    context = _Context(generator)
    for mask in (Mask(), Mask((Rect(1.2, 0.1, 1.5, 0.4),))):
        assert kinds.layer_hooks([_edits(mask)[kind]], context) == {}


def test_the_box_is_where_some_sample_has_mask():
    rasters = np.zeros((2, 6, 5), dtype=np.float32)
    rasters[0, 1, 2] = 0.5
    rasters[1, 4, 0] = 1.0
    region = Region.of(rasters)
    assert (region.rows, region.cols) == (slice(1, 5), slice(0, 3))
    assert region.crop(rasters).shape == (2, 4, 3)


def test_channels_are_touched_in_runs():
    assert channel_runs((1, 2, 3, 7)) == [slice(1, 4), slice(7, 8)]
    assert channel_runs((0,)) == [slice(0, 1)]


def test_what_a_hook_adds_is_built_once_per_dtype_and_device():
    builds = []
    parts = kinds_base.built_for(lambda dtype, device: builds.append(dtype) or len(builds))
    x = torch.zeros(1)
    assert [parts(x), parts(x), parts(x.double()), parts(x)] == [1, 1, 2, 1]
    assert builds == [torch.float32, torch.float64]


def test_the_renderer_keeps_an_edits_hook_across_renders(generator, monkeypatch):
    """A change upstream of an edit (another seed) re-runs its layer, with the tensors the edit's
    hook built the first time."""
    from ganinterface.engine.kinds import feature

    builds = []

    def counting(build):
        def counted(dtype, device):
            builds.append((dtype, device))
            return build(dtype, device)
        return kinds_base.built_for(counted)

    monkeypatch.setattr(feature, "built_for", counting)
    renderer = Renderer(generator, "cpu")
    edit = _edits(MASKS["inside"])["feature"]
    first = renderer.render(Scene(seed=1, edits=(edit,)))
    second = renderer.render(Scene(seed=2, edits=(edit,)))
    assert first.first_layer == second.first_layer == 0
    assert builds == [(torch.float32, torch.device("cpu"))]


def _levelled_dense(generator, edit, x):
    """``edit`` with its amount times clip(mean |x| of its channels / level), per sample, written
    out over the whole map in float64."""
    x = x.double()
    raster = _raster(generator, edit.mask).double()
    out = x.clone()
    for i in range(x.shape[0]):
        level = x[i, list(edit.channels)].abs().mean().item()
        gain = min(max(level / edit.level, edit.level_floor), 8.0)
        out[i, list(edit.channels)] += edit.amount * gain * raster
    return out


@pytest.mark.parametrize("floor", [0.0, 1.0])
@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5, 40.0])
def test_a_levelled_edit_paints_in_proportion_to_the_portraits_own_level(generator, floor, scale):
    context = _Context(generator)
    edit = FeatureEdit(LAYER, (0, 2, 3), MASKS["inside"], -1.7, level=0.8, level_floor=floor)
    x = _activation(generator, torch.channels_last) * scale
    out = _hook(generator, edit, context).apply(x.clone())
    torch.testing.assert_close(out.double(), _levelled_dense(generator, edit, x), rtol=1e-5, atol=1e-5)


def test_a_louder_portrait_gets_more_and_a_quieter_one_no_less_than_the_floor(generator):
    context = _Context(generator)
    x = _activation(generator, torch.channels_last)
    plain = FeatureEdit(LAYER, (1,), MASKS["whole map"], 1.0)
    level = x[:, 1].abs().mean().item()
    added = {}
    for name, edit, factor in (("plain", plain, 1.0),
                               ("at its level", dataclasses.replace(plain, level=level), 1.0),
                               ("twice as loud", dataclasses.replace(plain, level=level / 2), 2.0),
                               ("half as loud", dataclasses.replace(plain, level=2 * level), 0.5),
                               ("floored", dataclasses.replace(plain, level=2 * level, level_floor=1.0), 1.0)):
        out = _hook(generator, edit, context).apply(x.clone())
        added[name] = (out - x)[0, 1].sum().item() / _raster(generator, plain.mask).sum().item()
        assert added[name] == pytest.approx(factor, rel=1e-4), name


def test_each_sample_of_a_batch_gets_its_own_level(generator):
    context = _Context(generator)
    edit = FeatureEdit(LAYER, (0, 2), MASKS["across the right edge"], 0.9, level=1.0)
    x = torch.cat([_activation(generator, torch.contiguous_format) * s for s in (0.5, 3.0)])
    out = _hook(generator, edit, context).apply(x.clone())
    torch.testing.assert_close(out.double(), _levelled_dense(generator, edit, x), rtol=1e-5, atol=1e-5)
