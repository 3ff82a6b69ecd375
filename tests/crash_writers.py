"""Writers killed at random points, for test_crash_saves.py.

``python crash_writers.py FOLDER SEED KILLS`` works in FOLDER: for each kind of output the app
writes (a scene, the autosaved session, a recipe, exported images and animations, a converted
checkpoint) it makes two complete versions A and B as references, puts A in place, then KILLS times
forks a writer that writes B, A, B, ... to that output through the app's own code and SIGKILLs it
after a random delay (``random.Random(SEED)``).  After each kill it prints one JSON line: the kind,
what the output holds now (``A``, ``B``, ``missing``, ``partial``, or ``mixed`` for a checkpoint whose
weights and sidecar come from different versions) and whether the kill left a temporary (it hit a write).

The parent never runs torch (it forks only): a forked child would inherit a half-used thread pool.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganinterface.atomic import TEMPORARY_NAME

VERSIONS = ("A", "B")


def writers(folder: Path) -> dict[str, tuple[Path, Callable[[int, Path], None]]]:
    """Each kind's output and ``write(version, path)``."""
    from ganinterface.cli import main as cli
    from ganinterface.engine.renderer import Renderer
    from ganinterface.engine.scene import Recipe, Scene
    from ganinterface.export import jobs, userfiles
    from tiny_models import tiny_stylegan2

    renderer = None

    def render_with() -> Renderer:
        nonlocal renderer
        renderer = renderer or Renderer(tiny_stylegan2(seed=0))
        return renderer

    def scene(version: int) -> Scene:  # a W+ latent makes a file of some size: slow to write
        return Scene(seed=version, w=np.full((8, 64), version + 0.5, dtype=np.float32))

    def animation(version: int, path: Path) -> None:
        scenes = [Scene(seed=10 * version + i) for i in range(6)]
        jobs.export_animation(render_with(), scenes, path, fps=12)

    def convert(version: int, path: Path) -> None:
        source = folder / f"source-{version}.safetensors"
        if cli([*"convert --force --quiet".split(), str(source), str(path)]) != 0:
            raise SystemExit("convert failed")

    return {
        "scene": (folder / "scene.json", lambda v, p: userfiles.write_scene(p, scene(v))),
        "session": (folder / "session.json", lambda v, p: userfiles.write_session(
            p, userfiles.Session(scene(v), (v, v + 1), str(folder / "scene.json")))),
        "recipe": (folder / "recipe.json", lambda v, p: userfiles.write_recipe(
            p, Recipe(edits=(), name=VERSIONS[v] * 200_000))),
        "image": (folder / "image.png",
                  lambda v, p: jobs.export_image(render_with(), Scene(seed=v), p, scale=4)),
        "gif": (folder / "animation.gif", animation),
        "mp4": (folder / "animation.mp4", animation),
        "png-seq": (folder / "frames", animation),
        "convert": (folder / "model.safetensors", convert),
    }


def snapshot(path: Path) -> dict[str, bytes] | None:
    """The output's files and their bytes (a checkpoint's sidecar included); None if absent."""
    from ganinterface.models.native import sidecar_path

    if path.is_dir():
        return {child.name: child.read_bytes() for child in sorted(path.iterdir())}
    files = {"file": path}
    if path.suffix == ".safetensors":
        files["sidecar"] = sidecar_path(path)
    found = {role: file.read_bytes() for role, file in files.items() if file.exists()}
    return found or None


def verdict(now: dict[str, bytes] | None, references: list[dict[str, bytes]]) -> str:
    if now is None:
        return "missing"
    for name, reference in zip(VERSIONS, references):
        if now == reference or now == {"file": reference.get("file")}:  # a checkpoint without
            return name  # its sidecar is read with the description embedded in it
    if set(now) == set(references[0]) and all(
            any(now[file] == reference[file] for reference in references) for file in now):
        return "mixed"  # every file complete, but not all from the same version
    return "partial"


def temporaries(folder: Path) -> set[str]:
    return {name for name in os.listdir(folder) if TEMPORARY_NAME.fullmatch(name)}


def in_child(work: Callable[[], None]) -> int:
    """Fork; the child runs ``work`` and exits (0, or 1 on an exception). Returns its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def run(folder: Path, seed: int, kills: int) -> None:
    from ganinterface.models.native import save_native
    from tiny_models import tiny_stylegan2

    rng = random.Random(seed)
    outputs = writers(folder)
    for version in (0, 1):
        pid = in_child(lambda: save_native(tiny_stylegan2(seed=version + 1),
                                           folder / f"source-{version}.safetensors"))
        assert os.waitpid(pid, 0)[1] == 0
    for kind, (target, write) in outputs.items():
        references = folder / "references" / kind
        references.mkdir(parents=True)
        paths = [references / f"{name}{target.suffix}" for name in VERSIONS]
        pid = in_child(lambda: [write(v, p) for v, p in ((0, paths[0]), (1, paths[1]), (0, target))])
        assert os.waitpid(pid, 0)[1] == 0, f"{kind}: the reference writer failed"
        expected = [snapshot(path) for path in paths]
        for _ in range(kills):
            print(json.dumps(_kill_one(kind, target, write, expected, rng)), flush=True)


def _kill_one(kind: str, target: Path, write: Callable[[int, Path], None],
              expected: list[dict[str, bytes]], rng: random.Random) -> dict[str, object]:
    """Fork a writer of B, A, B, ...; kill it at a random point of its loop; say what is left."""
    before = temporaries(target.parent)
    ticks_read, ticks_write = os.pipe()

    def loop() -> None:
        for count in range(10 ** 9):
            write(1 - count % 2, target)
            os.write(ticks_write, b".")

    pid = in_child(loop)
    os.close(ticks_write)
    _wait_tick(ticks_read)  # the first write (with the first render) is slow: time the next
    started = time.monotonic()
    _wait_tick(ticks_read)
    one_write = time.monotonic() - started
    time.sleep(rng.uniform(0, 2 * one_write))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(ticks_read)
    if kind == "mp4":
        time.sleep(0.3)  # the orphaned ffmpeg finishes its temporary once its input closes
    return {"kind": kind, "outcome": verdict(snapshot(target), expected),
            "mid_write": bool(temporaries(target.parent) - before),
            "write_s": round(one_write, 4)}


def _wait_tick(ticks: int, timeout_s: float = 60.0) -> None:
    ready, _, _ = select.select([ticks], [], [], timeout_s)
    if not ready or not os.read(ticks, 1):
        raise SystemExit("the writer stopped or hung")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    import torch

    torch.set_num_threads(1)
    run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
