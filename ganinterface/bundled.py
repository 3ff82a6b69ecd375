"""Where the data shipped inside the package lives: the one module that knows.

The built-in portrait model, its discriminator, the attribute classifier, the shipped recipes and
directions are the package ``ganinterface.checkpoints``; icons and desktop files are
``ganinterface.resources``.  In the repository they sit at the top (``checkpoints/``,
``resources/``) and the build maps them into the package, so an editable install, a wheel, a
PyInstaller bundle and a zip import all find them through ``importlib.resources``.

Loaders need real files (safetensors maps them into memory), so when the package is not on a file
system (a zip import) its data is copied once into the user cache and read from there.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from importlib.abc import Traversable
from pathlib import Path

from ganinterface import __version__

CHECKPOINTS = "ganinterface.checkpoints"
RESOURCES = "ganinterface.resources"

BUILTIN_MODEL = "portraits-128x64.safetensors"
BUILTIN_DISCRIMINATOR = "portraits-128x64.discriminator.safetensors"
BUILTIN_ENCODER = "portraits-128x64.encoder.safetensors"
CLASSIFIER = "attribute-classifier.safetensors"


def checkpoints_dir() -> Path:
    """The folder of bundled checkpoints (with ``recipes/`` and ``directions/`` inside)."""
    return _on_disk(CHECKPOINTS)


def resources_dir() -> Path:
    """The folder of bundled icons and desktop files."""
    return _on_disk(RESOURCES)


def builtin_checkpoint() -> Path:
    """The built-in portrait generator (its JSON config lies beside it)."""
    return checkpoints_dir() / BUILTIN_MODEL


def builtin_discriminator() -> Path:
    return checkpoints_dir() / BUILTIN_DISCRIMINATOR


def builtin_encoder() -> Path:
    """The encoder that starts projections into the built-in model near the answer."""
    return checkpoints_dir() / BUILTIN_ENCODER


def classifier_checkpoint() -> Path:
    """The attribute classifier trained on the procedural portraits (its report lies beside it)."""
    return checkpoints_dir() / CLASSIFIER


def shipped_recipes() -> list[Path]:
    return _listed(checkpoints_dir() / "recipes", "*.json")


def shipped_directions() -> list[Path]:
    """The directions offered with the built-in model (the window's Built-in menu): each NAME.npy,
    and each NAME.json without one (a style-space direction).  Every method's candidates, kept in
    directions/methods/ for the edit report, are not offered."""
    folder = checkpoints_dir() / "directions"
    vectors = _listed(folder, "*.npy")
    styles = [path for path in _listed(folder, "*.json") if not path.with_suffix(".npy").exists()]
    return sorted(vectors + styles, key=lambda path: path.stem)


def _listed(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


@functools.lru_cache(maxsize=None)  # a zip import would otherwise walk the archive on every lookup
def _on_disk(package: str) -> Path:
    root = importlib.resources.files(package)
    if isinstance(root, Path):  # a file system install: editable, wheel, PyInstaller
        return root
    return _extracted(package, root)


def _extracted(package: str, root: Traversable) -> Path:
    """A copy of ``root`` in the user cache, made once per version and content."""
    import platformdirs

    from ganinterface.atomic import atomic_write_bytes

    files = sorted(_walk(root, ()))
    digest = hashlib.sha256()
    for parts, item in files:
        digest.update("/".join(parts).encode() + b"\x00" + str(_size(item)).encode() + b"\x00")
    cache = Path(platformdirs.user_cache_dir("ganinterface"))
    folder = cache / f"{package}-{__version__}-{digest.hexdigest()[:16]}"
    for parts, item in files:
        target = folder.joinpath(*parts)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, item.read_bytes())
    return folder


def _walk(folder: Traversable, parts: tuple[str, ...]):
    for item in folder.iterdir():
        if item.is_dir():
            if item.name != "__pycache__":
                yield from _walk(item, parts + (item.name,))
        elif not item.name.endswith((".py", ".pyc")):
            yield parts + (item.name,), item


def _size(item: Traversable) -> int:
    # zipfile.Path knows its size without reading; other Traversables may not
    info = getattr(item, "root", None)
    try:
        return info.getinfo(item.at).file_size if info is not None else len(item.read_bytes())
    except (AttributeError, KeyError):
        return len(item.read_bytes())
