"""The options commands share: one spelling of the checkpoint, one help text each, finite numbers."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from ganinterface.cli import COMMANDS, build_parser, main, options
from ganinterface.models.native import save_native
from tiny_models import tiny_stylegan2

RENDERING = ["info", "render", "features", "apply-recipe", "animate", "directions", "demo-eval",
             "demo-edits", "demo-directions"]
# what each command needs besides the checkpoint to get past argparse (its own inputs come first)
INPUTS = {"apply-recipe": ["r.json"], "export": ["in/"]}
REQUIRED = {"apply-recipe": ["--seeds", "1", "-o", "x.png"], "animate": ["--seeds", "1,2", "-o", "a.gif"],
            "directions": ["--method", "pca"], "features": ["--layer", "b8.conv1"],
            "export": ["-o", "a.gif"]}
FLOAT_OPTIONS = [("render", "--trunc"), ("features", "--trunc"), ("apply-recipe", "--trunc"),
                 ("apply-recipe", "--strength"), ("animate", "--trunc"), ("animate", "--strength"),
                 ("animate", "--strength-from"), ("animate", "--cycles"), ("animate", "--fps"),
                 ("export", "--fps"), ("directions", "--trunc"), ("demo-eval", "--trunc"),
                 ("train-demo", "--lr"), ("train-demo", "--minutes")]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _action(command: str, option: str) -> argparse.Action:
    return next(a for a in _subparsers()[command]._actions
                if option in a.option_strings or a.metavar == option)


def _parse(command: str, *argv: str) -> argparse.Namespace:
    return build_parser(command).parse_args([command, *INPUTS.get(command, []), *argv,
                                             *REQUIRED.get(command, [])])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_native(tiny_stylegan2(), path)
    return path


@pytest.mark.parametrize("command", RENDERING)
def test_every_rendering_command_takes_the_checkpoint_both_ways(command):
    assert _parse(command, "a.pkl").checkpoint == "a.pkl"
    assert _parse(command, "--checkpoint", "b.pkl").checkpoint == "b.pkl"
    assert _parse(command).checkpoint is None


def test_the_checkpoint_given_twice_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parse("render", "a.pkl", "--checkpoint", "b.pkl")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "give the checkpoint once, as CKPT or as --checkpoint CKPT")


@pytest.mark.parametrize("option", ["CKPT", "--checkpoint", "--device", "--trunc", "--seeds"])
def test_shared_options_have_one_help_text(option):
    helps = {command: _action(command, option).help for command in RENDERING
             if any(option in a.option_strings or a.metavar == option
                    for a in _subparsers()[command]._actions)}
    if option == "--seeds":  # the purpose differs; the syntax is said the same way
        assert all("a list such as 0-7,12" in text for text in helps.values()), helps
    else:
        assert len(set(helps.values())) == 1, helps
    assert len(helps) >= (4 if option in ("--trunc", "--seeds") else len(RENDERING) - 1)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_every_option(command, capsys):
    parser = _subparsers()[command]
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for action in parser._actions:
        for name in action.option_strings or [action.metavar or action.dest]:
            assert name in text, (command, name)


def test_no_command_parses_numbers_with_plain_float():
    for command, parser in _subparsers().items():
        assert not [a.dest for a in parser._actions if a.type is float], command


@pytest.mark.parametrize("command, option", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_numbers_are_refused_in_one_line(command, option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parse(command, f"{option}={value}")
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"ganinterface {command}: error: argument {_names(command, option)}: " \
                   f"expected a finite number, got {value!r}"


def _names(command: str, option: str) -> str:
    return "/".join(_action(command, option).option_strings)


def test_render_with_a_nan_truncation_writes_nothing(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["render", str(checkpoint), "--trunc", "nan", "-o", str(tmp_path / "x.png")])
    assert os.listdir(tmp_path) == []
    assert "finite" in capsys.readouterr().err


def test_render_accepts_the_checkpoint_as_an_option(checkpoint, tmp_path):
    assert main(["render", "--checkpoint", str(checkpoint), "--seeds", "1", "-o",
                 str(tmp_path / "a.npy")]) == 0
    assert main(["render", str(checkpoint), "--seeds", "1", "-o", str(tmp_path / "b.npy")]) == 0
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def test_a_bad_seed_list_names_its_option(checkpoint, capsys):
    assert main(["directions", str(checkpoint), "--method", "mean-difference", "--positive", "1",
                 "--negative", "4-2"]) == 1
    assert capsys.readouterr().err.strip() == (
        "ganinterface directions: error: --negative: seed range '4-2' runs backwards; write 2-4")


# ---- outputs are checked before any work ----------------------------------------------------------

WRITING = {  # every command that writes, with its output under the folder OUT
    "render": ["render", "{ckpt}", "-o", "OUT/x.png"],
    "features": ["features", "{ckpt}", "--layer", "b8.conv1", "-o", "OUT/grid.png"],
    "apply-recipe": ["apply-recipe", "r.json", "{ckpt}", "--seeds", "1,2", "-o", "OUT/{seed}.png"],
    "animate": ["animate", "{ckpt}", "--seeds", "1,2", "--frames", "3", "-o", "OUT/a.gif"],
    "export": ["export", "in.png", "-o", "OUT/sheet.png"],
    "convert": ["convert", "{ckpt}", "OUT/model.safetensors"],
    "directions": ["directions", "{ckpt}", "--method", "pca", "-o", "OUT/dirs"],
    "demo-eval": ["demo-eval", "{ckpt}", "--seeds", "0-3", "--json", "OUT/report.json"],
    "demo-edits": ["demo-edits", "{ckpt}", "--out", "OUT/edits"],
    "demo-directions": ["demo-directions", "{ckpt}", "--out", "OUT/edits"],
    "demo-dataset": ["demo-dataset", "OUT/portraits", "--count", "2"],
    "train-classifier": ["train-classifier", "--steps", "1", "--out", "OUT/c.safetensors"],
    "train-encoder": ["train-encoder", "{ckpt}", "--steps", "1", "-o", "OUT/e.safetensors"],
    "project": ["project", "in.png", "--checkpoint", "{ckpt}", "--steps", "1", "-o", "OUT/x.npz"],
    "sample-latents": ["sample-latents", "{ckpt}", "--from", "a.npz", "b.npz", "--count", "1", "-o", "OUT/x.png"],
}


@pytest.fixture
def writing_setup(tmp_path, checkpoint, monkeypatch):
    """A working folder with the commands' inputs, and a count of the images rendered."""
    from ganinterface.engine.renderer import Renderer
    from ganinterface.engine.scene import Recipe
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Path("r.json").write_text(Recipe(edits=()).to_json())
    Image.new("RGB", (8, 16)).save("in.png")
    rendered = []
    real_render = Renderer.render
    monkeypatch.setattr(Renderer, "render", lambda self, scene, taps=(): (
        rendered.append(scene.seed), real_render(self, scene, taps))[1])
    return rendered


def _run_writing(command: str, folder: str, checkpoint, capsys) -> str:
    argv = [a.replace("{ckpt}", str(checkpoint)).replace("OUT", folder) for a in WRITING[command]]
    before = sorted(p for p in Path(".").rglob("*"))
    assert main(argv) == 1
    assert sorted(p for p in Path(".").rglob("*")) == before  # nothing written, nothing made
    return capsys.readouterr().err.strip()


def _first_output(command: str, folder: str) -> str:
    pattern = next(a for a in WRITING[command] if a.startswith("OUT/"))
    return pattern.replace("OUT", folder).replace("{seed}", "1")


@pytest.mark.parametrize("command", sorted(WRITING))
def test_an_output_through_a_file_is_refused_naming_the_file_before_any_work(
        command, checkpoint, writing_setup, capsys):
    Path("afile").write_text("in the way")
    err = _run_writing(command, "afile", checkpoint, capsys)
    assert err == (f"ganinterface {command}: error: {_first_output(command, 'afile')}: "
                   "cannot write: afile is a file, not a folder")
    assert writing_setup == []


@pytest.mark.parametrize("command", sorted(WRITING))
def test_an_output_in_a_read_only_folder_is_refused_before_any_work(
        command, checkpoint, writing_setup, capsys, monkeypatch):
    """Root may write in any folder, so the system's "no" for ``locked`` is simulated."""
    Path("locked").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != Path("locked")
                        and real_access(path, mode, **kw))
    err = _run_writing(command, "locked", checkpoint, capsys)
    assert err == (f"ganinterface {command}: error: {_first_output(command, 'locked')}: "
                   "cannot write: no permission to write in locked")
    assert writing_setup == []


def test_every_writing_command_is_covered():
    written_by_others = {"train-demo"}  # its outputs are checked by cli/train_cmd.py
    reading_only = {"info"}
    assert set(WRITING) == set(COMMANDS) - written_by_others - reading_only


# ---- what was written ------------------------------------------------------------------------------

def test_a_few_files_are_listed_one_a_line():
    paths = [Path("out", f"seed{seed}.png") for seed in range(4)]
    assert options.written_lines(paths, "images") == [f"wrote {path}" for path in paths]


def test_a_batch_in_one_folder_is_one_line_with_its_first_and_last_file():
    paths = [Path("out", f"seed{seed}.png") for seed in range(200)]
    assert options.written_lines(paths, "images") == [
        f"wrote 200 images to out{os.sep} (seed0.png … seed199.png)"]


def test_a_batch_over_several_folders_is_one_line_from_where_they_part():
    paths = [Path("out", f"s{seed}", "x.png") for seed in range(5)]
    assert options.written_lines(paths, "images") == [
        f"wrote 5 images under out{os.sep} ({Path('s0', 'x.png')} … {Path('s4', 'x.png')})"]


@pytest.mark.parametrize("command", ["render", "features", "apply-recipe", "animate", "export",
                                     "convert", "directions"])
def test_commands_that_write_files_take_quiet(command):
    assert _parse(command, *(["IN", "OUT.safetensors"] if command == "convert" else []),
                  "-q").quiet is True


def test_projects_help_states_the_default_steps_the_search_takes():
    from ganinterface.engine.projection import STEPS, STEPS_FROM_A_GUESS
    assert (f"default {STEPS}, or {STEPS_FROM_A_GUESS} when an encoder gives the start"
            in _action("project", "--steps").help)


def test_the_projection_reports_help_states_its_default_steps():
    from ganinterface.search.projection_report import DEFAULT_STEPS
    assert f"(default: {DEFAULT_STEPS}, as project's from an encoder's guess)" in _action(
        "demo-eval", "--steps").help


@pytest.mark.parametrize("argv, starts", [
    (["render", "--seeds", "0-9", "-o", "x/{seed}.png"], True),  # may run on local workers
    (["render", "--seeds", "0-9", "--workers", "2", "-o", "x/{seed}.png"], True),
    (["render", "--seeds", "0-9", "--workers", "1", "-o", "x/{seed}.png"], False),  # this process
    (["render", "--seeds", "0-9", "--ray", "-o", "x/{seed}.png"], False),
    (["render", "--seeds", "0-9", "--device", "cuda", "-o", "x/{seed}.png"], False),
    (["info"], False),  # no batch job
])
def test_the_worker_server_starts_early_only_for_jobs_that_may_use_workers(monkeypatch, argv, starts):
    from ganinterface.export import batch

    started = []
    monkeypatch.setattr(batch, "start_worker_server", lambda: started.append(True))
    options.start_workers_early(build_parser(argv[0]).parse_args(argv))
    assert started == ([True] if starts else [])
