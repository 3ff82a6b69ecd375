"""The README's Python API example runs as written (on the built-in model instead of "my.pkl")."""

import re
from pathlib import Path

import numpy as np

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_python_api_example_runs(tmp_path, monkeypatch):
    section = README[README.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'load_generator("my.pkl")' in code
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(code.replace('load_generator("my.pkl")', "load_generator(None)"), names)
    result, scene = names["result"], names["scene"]
    assert result.error is None and result.image.dtype == np.uint8
    assert set(result.features) == {"b32.conv1"}
    from ganinterface.engine.scene import Scene
    assert Scene.from_json((tmp_path / "scene.json").read_text()) == scene
