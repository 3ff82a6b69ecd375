"""The package as users get it: its version, imported from a zip, built into a wheel and installed
into a fresh environment, and its icon and desktop files."""

from __future__ import annotations

import configparser
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# setup.py maps these top-level folders into the package; an installed tree has them inside it
MAPPED_DATA = {"checkpoints": "ganinterface/checkpoints", "resources": "ganinterface/resources"}


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _builtin_resolution() -> tuple[int, int]:
    """The built-in model's [H, W], as its config says."""
    height, width = json.loads((REPO / "checkpoints/portraits-128x64.json").read_text())["resolution"]
    return height, width


def _assert_builtin_portrait(path: Path) -> None:
    """An image of the built-in model's size with something in it."""
    pixels = _pixels(path)
    assert pixels.shape == (*_builtin_resolution(), 3), path
    assert pixels.reshape(-1, 3).std(axis=0).min() > 10, f"{path} is nearly uniform"


def _data_files(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                  if path.is_file() and path.suffix not in (".py", ".pyc"))


def _shipped_recipe_names() -> list[str]:
    return sorted(path.name for path in (REPO / "checkpoints/recipes").glob("*.json"))


# ---- version -------------------------------------------------------------------------------------

def test_version_command_prints_the_installed_version(tmp_path):
    result = _run([sys.executable, "-m", "ganinterface", "--version"], cwd=tmp_path)
    assert result.stdout == f"ganinterface {importlib.metadata.version('ganinterface')}\n"


# ---- zip import ----------------------------------------------------------------------------------

ZIP_PROBE = """
import json
import ganinterface
from ganinterface import bundled
print(json.dumps({"module": ganinterface.__file__, "model": str(bundled.builtin_checkpoint()),
                  "recipes": [path.name for path in bundled.shipped_recipes()]}))
"""


def _zip_installed_tree(archive: Path) -> None:
    """ganinterface/ with the mapped data folders inside it, as a wheel installs them."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        sources = [(REPO / "ganinterface", "ganinterface")]
        sources += [(REPO / folder, inside) for folder, inside in MAPPED_DATA.items()]
        for folder, inside in sources:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zipped.write(path, f"{inside}/{path.relative_to(folder).as_posix()}")


@pytest.fixture(scope="module")
def zipped_package(tmp_path_factory) -> Path:
    archive = tmp_path_factory.mktemp("zipped") / "ganinterface.zip"
    _zip_installed_tree(archive)
    return archive


def _zip_environment(archive: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(archive), "XDG_CACHE_HOME": str(cache)}


def test_bundled_data_is_extracted_to_the_cache_when_imported_from_a_zip(zipped_package, tmp_path):
    archive, cache = zipped_package, tmp_path / "cache"
    env = _zip_environment(archive, cache)
    probe = [sys.executable, "-c", ZIP_PROBE]
    found = json.loads(_run(probe, cwd=tmp_path, env=env).stdout)

    assert Path(found["module"]).is_relative_to(archive)
    model = Path(found["model"])
    assert model.is_relative_to(cache) and model.is_file()
    original = REPO / "checkpoints" / model.name
    assert model.stat().st_size == original.stat().st_size
    assert _digest(model) == _digest(original)
    assert (model.parent / "portraits-128x64.json").is_file()  # the loader reads the config beside it
    assert found["recipes"] == _shipped_recipe_names()

    written = model.stat().st_mtime_ns
    again = json.loads(_run(probe, cwd=tmp_path, env=env).stdout)
    assert again["model"] == found["model"] and model.stat().st_mtime_ns == written  # extracted once


@pytest.mark.slow
def test_renders_the_builtin_model_when_imported_from_a_zip(zipped_package, tmp_path):
    env = _zip_environment(zipped_package, tmp_path / "cache")
    _run([sys.executable, "-m", "ganinterface", "render", "--seeds", "0", "-o", "seed{seed}.png"],
         cwd=tmp_path, env=env)
    _assert_builtin_portrait(tmp_path / "seed0.png")


# ---- wheel in a fresh environment ----------------------------------------------------------------

# what the build reads; copied out so the build leaves nothing (build/, *.egg-info) in the checkout
BUILD_INPUTS = ["pyproject.toml", "setup.py", "README.md", "ganinterface", "checkpoints", "resources"]

WHEEL_PROBE = """
import json
import ganinterface
from ganinterface import bundled
from ganinterface.cli import main

exits = {path.name: main(["apply-recipe", str(path), "--seeds", "0", "-o", f"{path.stem}.png"])
         for path in bundled.shipped_recipes()}
print(json.dumps({"module": ganinterface.__file__, "exits": exits,
                  "checkpoints": str(bundled.checkpoints_dir()),
                  "resources": str(bundled.resources_dir())}))
"""


def _build_wheel(folder: Path) -> Path:
    source = folder / "source"
    source.mkdir(parents=True)
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(source)],
         cwd=folder, timeout=300)
    [wheel] = folder.glob("ganinterface-*.whl")
    return wheel


def _fresh_environment(folder: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel (not editable) and its dependencies; torch is the
    release the tests run with, as the README installs torch first."""
    _run([sys.executable, "-m", "venv", str(folder)], cwd=folder.parent)
    python = folder / "bin" / "python"
    torch_release = torch.__version__.split("+")[0]
    # --no-compile: byte-compiling torch's thousands of modules would double the install time
    _run([str(python), "-m", "pip", "install", "-q", "--no-compile", f"torch=={torch_release}",
          str(wheel)], cwd=folder.parent, timeout=900)
    return folder


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_environment_renders_and_applies_every_recipe(tmp_path):
    wheel = _build_wheel(tmp_path / "wheel")
    environment = _fresh_environment(tmp_path / "venv", wheel)
    work = tmp_path / "work"  # outside the checkout, which is not on the path
    work.mkdir()
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    command = str(environment / "bin" / "ganinterface")

    version = _run([command, "--version"], cwd=work, env=env).stdout
    assert version == f"ganinterface {wheel.name.split('-')[1]}\n"
    _run([command, "render", "--seeds", "0-1", "-o", "render-{seed}.png"], cwd=work, env=env)
    for seed in (0, 1):
        _assert_builtin_portrait(work / f"render-{seed}.png")
    assert not np.array_equal(_pixels(work / "render-0.png"), _pixels(work / "render-1.png"))

    probe = _run([str(environment / "bin" / "python"), "-c", WHEEL_PROBE], cwd=work, env=env)
    found = json.loads(probe.stdout.splitlines()[-1])
    for path in (found["module"], found["checkpoints"], found["resources"]):
        assert Path(path).is_relative_to(environment / "lib"), path
    for folder in MAPPED_DATA:  # every data file of the checkout's folder is in the wheel
        assert _data_files(Path(found[folder])) == _data_files(REPO / folder), folder
    _assert_every_recipe_edited_seed_0(found["exits"], work)


def _assert_every_recipe_edited_seed_0(exits: dict[str, int], work: Path) -> None:
    assert sorted(exits) == _shipped_recipe_names() and set(exits.values()) == {0}
    plain = _pixels(work / "render-0.png")
    for name in exits:
        edited = work / f"{Path(name).stem}.png"
        _assert_builtin_portrait(edited)
        assert not np.array_equal(_pixels(edited), plain), f"{name} changed nothing"


# ---- icon ----------------------------------------------------------------------------------------

ICON_SIZES = (48, 128, 256)


def test_icon_pngs_are_square_at_each_size():
    for size in ICON_SIZES:
        image = Image.open(REPO / "resources" / f"ganinterface-{size}.png")
        assert image.size == (size, size) and image.mode == "RGBA"
        assert np.asarray(image)[..., :3].reshape(-1, 3).std(axis=0).min() > 20


def test_icon_pngs_are_renderings_of_the_svg(tmp_path):
    converter = shutil.which("rsvg-convert")
    if converter is None:
        pytest.skip("rsvg-convert (Debian: librsvg2-bin) is not installed")
    for size in ICON_SIZES:
        fresh = tmp_path / f"{size}.png"
        _run([converter, "-w", str(size), "-h", str(size), str(REPO / "resources/ganinterface.svg"),
              "-o", str(fresh)], cwd=tmp_path)
        committed = np.asarray(Image.open(REPO / f"resources/ganinterface-{size}.png"), dtype=float)
        assert np.abs(np.asarray(Image.open(fresh), dtype=float) - committed).mean() < 1, size


def test_window_icon_has_every_size(qapp):
    from ganinterface.ui.app import app_icon

    sizes = {(size.width(), size.height()) for size in app_icon().availableSizes()}
    assert sizes == {(size, size) for size in ICON_SIZES}


# ---- desktop entry and AppStream metadata -------------------------------------------------------

PACKAGING = REPO / "packaging"
METAINFO = PACKAGING / "io.github.ganinterface.metainfo.xml"


def _desktop_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def _install_desktop(prefix: Path, executable: str) -> Path:
    _run(["bash", str(PACKAGING / "install-desktop.sh"), str(prefix), executable], cwd=prefix.parent)
    return prefix / "share"


def test_desktop_entry_runs_the_command_with_the_bundled_icon():
    entry = _desktop_entry(PACKAGING / "ganinterface.desktop")
    scripts = {point.name for point in importlib.metadata.distribution("ganinterface").entry_points
               if point.group == "console_scripts"}
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] in scripts
    assert (REPO / "resources" / f"{entry['Icon']}.svg").is_file()
    assert entry["Categories"].endswith(";") and entry["Name"] and entry["Comment"]


def test_metainfo_names_the_package_its_launcher_and_screenshots():
    root = ElementTree.parse(METAINFO).getroot()
    metadata = importlib.metadata.metadata("ganinterface")
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == METAINFO.name.removesuffix(".metainfo.xml")
    assert root.findtext("name") == metadata["Name"]
    assert root.findtext("project_license") == metadata["License"]
    assert root.findtext("metadata_license") and root.findtext("summary")
    assert root.find("description/p").text.strip()
    assert (PACKAGING / root.findtext("launchable[@type='desktop-id']")).is_file()
    assert root.findtext("provides/binary") == _desktop_entry(
        PACKAGING / "ganinterface.desktop")["Exec"].split()[0]
    assert root.find("content_rating").get("type").startswith("oars-")
    assert root.find("releases/release").get("version") == importlib.metadata.version("ganinterface")
    images = [image.text for image in root.iterfind("screenshots/screenshot/image")]
    assert images and all(image.startswith("https://") for image in images)
    for image in images:  # each shows a screenshot kept in the repository
        assert (REPO / "docs" / image.rpartition("/docs/")[2]).is_file(), image


def test_installed_desktop_files_run_the_given_executable(tmp_path):
    share = _install_desktop(tmp_path / "prefix", "/opt/an app/ganinterface")
    entry = _desktop_entry(share / "applications/ganinterface.desktop")
    assert entry["Exec"] == '"/opt/an app/ganinterface" %f'
    for size in ICON_SIZES:
        icon = share / f"icons/hicolor/{size}x{size}/apps/ganinterface.png"
        assert Image.open(icon).size == (size, size)
    assert (share / "icons/hicolor/scalable/apps/ganinterface.svg").is_file()
    assert (share / "metainfo" / METAINFO.name).read_bytes() == METAINFO.read_bytes()


def test_installed_desktop_files_pass_the_freedesktop_validators(tmp_path):
    validators = {name: shutil.which(name) for name in ("desktop-file-validate", "appstreamcli")}
    missing = [name for name, path in validators.items() if path is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (Debian: desktop-file-utils, appstream)")
    share = _install_desktop(tmp_path / "prefix", "ganinterface")
    result = _run([validators["desktop-file-validate"], str(share / "applications/ganinterface.desktop")],
                  cwd=tmp_path)
    assert result.stdout == "", result.stdout  # hints and warnings are printed, errors fail
    # validate-tree also checks that the launchable desktop file is installed beside it
    _run([validators["appstreamcli"], "validate-tree", "--no-net", str(tmp_path / "prefix")],
         cwd=tmp_path)


# ---- the self-test that packaging/build.sh runs in the bundle ------------------------------------

def test_selftest_closes_the_window_after_its_first_frame(qtbot, tmp_path, monkeypatch, capsys):
    from ganinterface.ui import app as ui_app

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # QSettings stay out of the real home
    assert ui_app.main(["--selftest"]) == 0
    height, width = _builtin_resolution()
    assert f"shows a {width} × {height} px frame" in capsys.readouterr().out


def test_selftest_fails_when_no_frame_comes_in_time(qtbot, tmp_path, monkeypatch, capsys):
    from ganinterface.ui import app as ui_app

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(ui_app, "SELFTEST_TIMEOUT_S", 0.001)  # before the model has even loaded
    assert ui_app.main(["--selftest"]) == 1
    assert "no frame within" in capsys.readouterr().err
