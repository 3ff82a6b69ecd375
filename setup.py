"""What pyproject.toml cannot say: the found packages plus the bundled data folders.

``checkpoints/`` and ``resources/`` sit at the top of the repository, where people look for them,
and become the packages ``ganinterface.checkpoints`` and ``ganinterface.resources``, so an
editable install, a wheel and an app bundle all find them through importlib.resources
(``ganinterface/bundled.py``).
"""

from setuptools import find_packages, setup

BUNDLED = {"ganinterface.checkpoints": "checkpoints", "ganinterface.resources": "resources"}

setup(packages=find_packages(include=["ganinterface", "ganinterface.*"]) + list(BUNDLED),
      package_dir=BUNDLED)
