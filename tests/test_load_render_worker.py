"""The window's render worker under load: thousands of random scene changes, model reloads and
failing renders through ``render_executor`` (the worker RenderBridge runs), Qt-free.

Checked: no deadlock (every wait has a timeout), the last frame delivered equals a fresh Renderer's
render of the last scene (and so do sampled frames on the way), memory stays within a stated bound
after warm-up, and a render that fails (an edit raising inside its hook, a model whose forward
raises, an edit the model refuses) leaves the worker serving the next request.

With GANINTERFACE_WRITE_REPORTS=1 the slow run writes its figures into docs/reliability.md.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from ganinterface.engine import kinds
from ganinterface.engine import renderer as renderer_module
from ganinterface.engine.kinds import (DirectionEdit, FeatureCopy, FeatureEdit, RegionResample,
                                       StyleMix)
from ganinterface.engine.kinds.base import EditKind, KeyedHook
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Anchor, Bitmap, Mask, Rect, Scene, Stroke
from ganinterface.engine.scheduler import RenderRequest, render_executor
from ganinterface.models.base import NOISE_MODES
from tiny_models import tiny_stylegan2

CACHE_BYTES = 4 << 20  # each renderer's layer cache budget in this test
# RSS may grow after warm-up by at most one more full layer cache (a reload's new renderer fills its
# own while the old one's memory is returned to the allocator, not always to the system) plus the
# allocator's and Python's slack for ~10^4 short-lived tensors and arrays.
RSS_SLACK = 24 << 20
RSS_BOUND = CACHE_BYTES + RSS_SLACK
WAIT = 60  # seconds: any wait longer than this is a deadlock
RELOAD_EVERY = 500  # scene changes between model reloads
BROKEN_EVERY = 4  # every 4th model loaded is one whose forward raises
SAMPLE_EVERY = 97  # every 97th delivered frame is compared with a fresh render


# ---- an edit that raises inside its hook, in the middle of synthesis -----------------------------

@dataclasses.dataclass(frozen=True)
class ExplodingEdit:
    layer: str
    enabled: bool = True
    name: str = ""
    kind: ClassVar[str] = "explodes"


class ExplodingKind(EditKind):
    name = "explodes"
    edit_type = ExplodingEdit
    readers = {}

    def describe(self, edit: ExplodingEdit) -> str:
        return "explodes"

    def layer_hook(self, edit, ctx, what):
        def change(_x):
            raise RuntimeError(f"{what} exploded")

        # the key digests all the hook does, its message included (the renderer reuses hooks by key)
        return ctx.generator.layer_index(edit.layer), KeyedHook(change, lambda: f"explodes as {what}")


@pytest.fixture
def exploding_kind(monkeypatch):
    monkeypatch.setitem(kinds.KINDS, ExplodingKind.name, ExplodingKind())
    # pytest's log capture keeps each record, and with its traceback the frames' tensors and
    # renderers: memory would measure the test harness, not the worker
    monkeypatch.setattr(renderer_module.log, "disabled", True)


@pytest.fixture
def one_torch_thread():
    """On a busy machine torch's own worker threads, waiting on each other, made each tiny render
    ~15 times slower: the figures would measure the machine's load, not the render worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- models ---------------------------------------------------------------------------------------

def load(index: int) -> Renderer:
    """What loading a checkpoint gives the window: a new generator in a new Renderer; every
    ``BROKEN_EVERY``-th one cannot run its forward pass."""
    generator = tiny_stylegan2(seed=index)
    if index % BROKEN_EVERY == BROKEN_EVERY - 1:
        def broken(*_args, **_kwargs):
            raise RuntimeError("this model's forward pass fails")

        generator.synthesize = broken
    return Renderer(generator, "cpu", cache_bytes=CACHE_BYTES)


# ---- random changes -------------------------------------------------------------------------------

class SceneWalk:
    """What a user does, one change at a time, drawn from a seeded generator."""

    def __init__(self, seed: int, generator) -> None:
        self.rng = random.Random(seed)
        self.layers = list(generator.layers)
        self.num_ws, self.w_dim = generator.num_ws, generator.w_dim
        self.scene = Scene()
        self.taps: tuple[str, ...] = ()
        self.changes = {name: getattr(self, "_" + name) for name in (
            "seed", "truncation", "noise", "latent", "feature", "feature_copy", "direction",
            "style_mix", "resample", "strength", "toggle", "delete", "clear", "tap", "refused",
            "explodes")}
        self.weights = [6, 2, 2, 1, 4, 3, 4, 2, 2, 10, 2, 2, 1, 3, 1, 1]

    def step(self) -> tuple[Scene, tuple[str, ...]]:
        """The scene after the next change, and the layers tapped.  An edit that fails is tried
        once and undone: it is in the scene returned, not in the next one."""
        name = self.rng.choices(list(self.changes), self.weights)[0]
        tried = self.changes[name]()
        if len(self.scene.edits) > 6:
            self.scene = self.scene.replace(edits=self.scene.edits[1:])
        if tried is not None:
            return self.scene.replace(edits=self.scene.edits + (tried,)), self.taps
        return self.scene, self.taps

    def _add(self, edit) -> None:
        self.scene = self.scene.replace(edits=self.scene.edits + (edit,))

    def _layer(self):
        return self.rng.choice(self.layers)

    def _rows(self) -> tuple[int, int | None]:
        first = self.rng.randrange(self.num_ws)
        return first, self.rng.choice([None, self.rng.randrange(first, self.num_ws)])

    def _mask(self) -> Mask:
        r = self.rng
        if r.random() < 0.1:
            values = np.random.default_rng(r.randrange(1 << 30)).random((8, 4), dtype=np.float32)
            return Mask((Bitmap(values),))
        if r.random() < 0.5:
            x0, y0 = r.random() * 0.7, r.random() * 0.7
            shape = Rect(x0, y0, x0 + r.uniform(0.1, 0.3), y0 + r.uniform(0.1, 0.3),
                         softness=r.random())
        else:
            points = tuple((r.random(), r.random()) for _ in range(r.randint(1, 4)))
            shape = Stroke(points, radius=r.uniform(0.02, 0.3), softness=r.random())
        return Mask((shape,), dx=r.uniform(-0.1, 0.1), dy=r.uniform(-0.1, 0.1))

    def _anchor(self) -> Anchor | None:
        if self.rng.random() < 0.7:
            return None
        layer = self._layer()
        return Anchor(layer.name, (self.rng.randrange(layer.channels),), self.rng.random(),
                      self.rng.random(), spread=self.rng.random() * 0.2,
                      follow_scale=self.rng.random() < 0.5,
                      reach=self.rng.choice([None, 0.3]))

    def _seed(self) -> None:
        self.scene = self.scene.replace(seed=self.rng.randrange(1 << 20), w=None)

    def _truncation(self) -> None:
        self.scene = self.scene.replace(truncation_psi=round(self.rng.uniform(0.3, 1.2), 2),
                                        truncation_cutoff=self.rng.choice([None, 2, 4]))

    def _noise(self) -> None:
        self.scene = self.scene.replace(noise_mode=self.rng.choice(NOISE_MODES),
                                        noise_seed=self.rng.randrange(100))

    def _latent(self) -> None:
        shape = self.rng.choice([(self.w_dim,), (self.num_ws, self.w_dim)])
        w = np.random.default_rng(self.rng.randrange(1 << 30)).normal(size=shape)
        self.scene = self.scene.replace(w=w.astype(np.float32))

    def _feature(self) -> None:
        layer = self._layer()
        channels = tuple(self.rng.sample(range(layer.channels), self.rng.randint(1, 3)))
        self._add(FeatureEdit(layer.name, channels, self._mask(), round(self.rng.uniform(-3, 3), 2),
                              anchor=self._anchor()))

    def _feature_copy(self) -> None:
        r = self.rng
        self._add(FeatureCopy(self._layer().name, self._mask(), scale=r.uniform(0.5, 2),
                              centre=(r.random(), r.random()),
                              offset=(r.uniform(-0.2, 0.2), r.uniform(-0.2, 0.2)),
                              amount=r.uniform(0, 1), anchor=self._anchor()))

    def _direction(self) -> None:
        shape = self.rng.choice([(self.w_dim,), (self.num_ws, self.w_dim)])
        vector = np.random.default_rng(self.rng.randrange(1 << 30)).normal(size=shape)
        first, last = self._rows()
        self._add(DirectionEdit(vector.astype(np.float32), self.rng.uniform(-3, 3), first, last))

    def _style_mix(self) -> None:
        first, last = self._rows()
        self._add(StyleMix(self.rng.randrange(1 << 20), first, last))

    def _resample(self) -> None:
        self._add(RegionResample(self._layer().name, self._mask(), self.rng.randrange(1 << 20)))

    def _pick(self, *types) -> int | None:
        indices = [i for i, edit in enumerate(self.scene.edits) if isinstance(edit, types)]
        return self.rng.choice(indices) if indices else None

    def _replace_edit(self, index: int, **changes) -> None:
        edits = list(self.scene.edits)
        edits[index] = dataclasses.replace(edits[index], **changes)
        self.scene = self.scene.replace(edits=tuple(edits))

    def _strength(self) -> None:  # a slider step: the most common change in the window
        index = self._pick(FeatureEdit, FeatureCopy, DirectionEdit)
        if index is not None:
            step = self.rng.choice([-0.1, -0.05, 0.05, 0.1])
            self._replace_edit(index, amount=round(self.scene.edits[index].amount + step, 2))

    def _toggle(self) -> None:
        index = self._pick(object)
        if index is not None:
            self._replace_edit(index, enabled=not self.scene.edits[index].enabled)

    def _delete(self) -> None:
        index = self._pick(object)
        if index is not None:
            edits = self.scene.edits
            self.scene = self.scene.replace(edits=edits[:index] + edits[index + 1:])

    def _clear(self) -> None:
        self.scene = self.scene.replace(edits=())

    def _tap(self) -> None:
        self.taps = self.rng.choice([(), (self._layer().name,)])

    def _refused(self) -> FeatureEdit:  # an edit this model cannot apply: a channel it lacks
        layer = self._layer()
        return FeatureEdit(layer.name, (layer.channels,), self._mask(), 1.0)

    def _explodes(self) -> ExplodingEdit:
        return ExplodingEdit(self._layer().name)


# ---- the run --------------------------------------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass
class LoadReport:
    changes: int = 0
    renders: int = 0  # requests that ran (the others were superseded while waiting)
    delivered: int = 0
    failed: int = 0  # delivered with an error
    reloads: int = 0
    compared: int = 0  # delivered frames compared with a fresh render
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # of this process, every thread: less sensitive to a busy machine
    rss_growth: int = 0  # after warm-up (the first reload cycle), the largest seen
    cache_bytes_max: int = 0


def same_render(a, b) -> bool:
    if a.error is not None or b.error is not None:
        return a.error == b.error
    return (np.array_equal(a.image, b.image) and np.array_equal(a.raw, b.raw)
            and np.array_equal(a.ws, b.ws) and a.features.keys() == b.features.keys()
            and all(np.array_equal(a.features[k], b.features[k]) for k in a.features))


@dataclasses.dataclass(frozen=True)
class Frame:
    """A delivered frame and what it was asked of (not the request: that would keep its renderer,
    and the renderer's cache, alive)."""

    generator: object
    scene: Scene
    taps: tuple[str, ...]
    result: object

    def fresh(self):
        return Renderer(self.generator, "cpu").render(self.scene, self.taps)


def run_load(changes: int, seed: int) -> LoadReport:
    report = LoadReport(changes=changes)
    rng = random.Random(seed)
    lock = threading.Lock()
    sampled: list[Frame] = []  # every SAMPLE_EVERY-th delivered frame, compared after the run
    last_frame: list[tuple[RenderRequest, Frame]] = []

    def on_result(outcome) -> None:  # the render thread
        request = outcome.request
        frame = Frame(request.renderer.generator, request.scene, request.taps, outcome.value)
        with lock:
            report.delivered += 1
            report.failed += outcome.value.error is not None
            if report.delivered % SAMPLE_EVERY == 0:
                sampled.append(frame)
            last_frame[:] = [(request, frame)]

    executor = render_executor(on_result)
    renderer = load(0)
    walk = SceneWalk(seed, renderer.generator)
    warm_rss = None
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        for i in range(changes):
            if i and i % RELOAD_EVERY == 0:
                report.reloads += 1
                renderer = load(report.reloads)
                if report.reloads == 1:
                    assert executor.wait_idle(WAIT)
                    warm_rss = rss_bytes()
            if warm_rss is not None and i % 100 == 0:
                report.rss_growth = max(report.rss_growth, rss_bytes() - warm_rss)
            report.cache_bytes_max = max(report.cache_bytes_max, renderer.cache_bytes)
            scene, taps = walk.step()
            last = RenderRequest(renderer, scene, taps)
            executor.submit(last)
            if rng.random() < 0.6:  # otherwise the next change comes while this one renders
                assert executor.wait_idle(WAIT), f"render worker stuck at change {i}"
        assert executor.wait_idle(WAIT), "render worker stuck at the end"
        report.seconds = time.perf_counter() - started
        report.cpu_seconds = time.process_time() - cpu_started
        report.renders = executor.stats.completed
    finally:
        executor.shutdown(wait=True, timeout=WAIT)
    request, frame = last_frame[0]
    assert request is last, "the last request's frame must come last"
    assert same_render(frame.result, frame.fresh())
    for frame in sampled:
        assert same_render(frame.result, frame.fresh()), frame.scene
        report.compared += 1
    return report


def check(report: LoadReport) -> None:
    assert report.renders > report.changes // 2  # most changes rendered, not only superseded
    assert 0 < report.failed < report.delivered  # failures happened, and the worker went on
    assert report.cache_bytes_max <= CACHE_BYTES
    assert report.rss_growth <= RSS_BOUND, f"RSS grew by {report.rss_growth / 2**20:.1f} MiB"
    assert threading.active_count() < 10  # the worker thread ended; no threads left behind


@pytest.mark.slow  # hundreds of changes
def test_hundreds_of_changes_leave_the_worker_serving_the_last_scene(exploding_kind,
                                                                   one_torch_thread):
    report = run_load(400, seed=1)
    check(report)


@pytest.mark.slow
def test_ten_thousand_changes_with_reloads_and_failures(exploding_kind, one_torch_thread):
    report = run_load(10_000, seed=2026)
    check(report)
    if os.environ.get("GANINTERFACE_WRITE_REPORTS") == "1":
        write_report(report)


def test_the_last_frame_is_the_last_scenes_even_when_its_render_fails(exploding_kind):
    """A failed render is delivered like any other: the window shows the error, not an old image."""
    renderer = load(0)
    outcomes = []
    executor = render_executor(outcomes.append)
    try:
        layer = renderer.generator.layers[3].name
        for scene in (Scene(seed=1), Scene(seed=2, edits=(ExplodingEdit(layer),)), Scene(seed=3)):
            executor.submit(RenderRequest(renderer, scene))
            assert executor.wait_idle(WAIT)
    finally:
        executor.shutdown(wait=True, timeout=WAIT)
    errors = [outcome.value.error for outcome in outcomes]
    assert errors[0] is None and "exploded" in errors[1] and errors[2] is None
    last = outcomes[2]
    fresh = Frame(renderer.generator, last.request.scene, (), last.value).fresh()
    assert same_render(last.value, fresh) and fresh.error is None


# ---- the figures ------------------------------------------------------------------------------------

HEADING = "## Render worker under load"


def write_report(report: LoadReport) -> None:
    mib = 1 << 20
    section = f"""{HEADING}

`tests/test_load_render_worker.py` (`-m slow`; its figures written by
`GANINTERFACE_WRITE_REPORTS=1 pytest -m slow tests/test_load_render_worker.py`) sends
{report.changes:,} random scene changes, drawn from a seeded generator, through the window's render
worker (`engine.scheduler.render_executor`, as `RenderBridge` runs it): seeds, truncation, noise,
W and W+ latents, edits of every kind (feature, fill, direction, style mix, resample; masks of
strokes, rectangles and bitmaps; anchors), strength steps, edits toggled and deleted, tapped
layers, edits the model refuses and edits that raise inside their hook. 60% of the changes wait
for their frame, the others arrive while the previous one renders. The model is reloaded every
{RELOAD_EVERY} changes (a new generator in a new `Renderer`); every {BROKEN_EVERY}th model's
forward pass raises. The tiny model is `tests/tiny_models.tiny_stylegan2` (16x8 pixels); the
machine had {os.cpu_count()} CPU cores, shared with other work; torch ran one thread of its own
(`torch.set_num_threads(1)`: on the busy machine its two worker threads, waiting on each other,
made each render of this tiny model ~15 times slower).

| figure | value |
|---|---|
| scene changes | {report.changes:,} |
| model reloads | {report.reloads} |
| renders run (the rest superseded while waiting) | {report.renders:,} |
| frames delivered | {report.delivered:,}, of them {report.failed:,} with an error |
| frames compared with a fresh `Renderer` (every {SAMPLE_EVERY}th and the last) | \
{report.compared + 1}, all equal |
| wall time (CPU time of all threads) | {report.seconds:.1f} s ({report.cpu_seconds:.1f} s), \
{report.seconds / report.renders * 1000:.1f} ms a render |
| layer cache, largest | {report.cache_bytes_max / mib:.2f} MiB \
(budget {CACHE_BYTES / mib:.0f} MiB) |
| RSS growth after warm-up (the first {RELOAD_EVERY} changes) | \
{report.rss_growth / mib:.1f} MiB (bound {RSS_BOUND / mib:.0f} MiB) |

The bound is one more layer cache (a reloaded model's renderer fills its own while the old one's
memory goes back to the allocator, not always to the system) plus {RSS_SLACK / mib:.0f} MiB of
allocator slack. No wait for the worker took longer than {WAIT} s (each would fail the test), and
the frame delivered last is always the last scene's, failed or not. In the window a renderer keeps
its default budget of 1 GiB (`DEFAULT_CACHE_BYTES`): its memory then grows up to that and stays
there.
"""
    path = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
    text = path.read_text() if path.exists() else "# Reliability\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
