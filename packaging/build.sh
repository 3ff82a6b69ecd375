#!/usr/bin/env bash
# Build the one-folder app bundle dist/ganinterface/ with PyInstaller, check that it works, print
# its size.
#
#   packaging/build.sh
#
# Needs the project's environment (the README's set-up) with PyInstaller in it:
#   .venv/bin/pip install -e ".[bundle]"
# PYTHON picks another environment's interpreter (default: .venv/bin/python of this checkout).
#
# Steps: build the wheel and unpack it, so the bundle carries exactly the wheel's code and package
# data; run PyInstaller on packaging/ganinterface.spec (work files in build/bundle/); then run the
# bundle from outside the checkout: --version, a render of the built-in model, the window
# offscreen until it shows its first frame (--selftest), and one training step with a spawned
# worker process. Takes minutes of heavy CPU.
# The bundle runs where it was built and on newer Linux systems (it links the build machine's glibc).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
work=$root/build/bundle
bundle=$root/dist/ganinterface
start=$SECONDS

rm -rf "$work" "$bundle"
mkdir -p "$work/source"
# the wheel from a copy of what its build reads: an in-tree build would leave build/lib behind,
# and a later build would ship modules deleted since
cp -r "$root"/{pyproject.toml,setup.py,README.md,ganinterface,checkpoints,resources} "$work/source/"
"$python" -m pip wheel -q --no-deps -w "$work/wheel" "$work/source"
"$python" -m zipfile -e "$work"/wheel/ganinterface-*.whl "$work/tree"

GANINTERFACE_WHEEL_TREE=$work/tree "$python" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$root/dist" --workpath "$work/pyinstaller" "$root/packaging/ganinterface.spec"
echo "built $bundle in $((SECONDS - start)) s"

check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
cd "$check"  # away from the checkout, whose ganinterface/ must not be what runs
"$bundle/ganinterface" --version
"$bundle/ganinterface" render --seeds 0 -o seed0.png
"$python" - seed0.png <<'EOF'
import sys

import numpy as np
from PIL import Image

pixels = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
assert pixels.reshape(-1, 3).std(axis=0).min() > 10, "the bundle rendered a blank image"
print(f"the bundle rendered a {pixels.shape[1]} x {pixels.shape[0]} px portrait")
EOF
QT_QPA_PLATFORM=offscreen XDG_CONFIG_HOME=$check timeout 180 "$bundle/ganinterface" --selftest
# worker processes are spawned as the bundle's own executable: one training step with one
"$bundle/ganinterface" train-demo --kimg 0.004 --batch 4 --data-workers 1 --device cpu \
  --no-export --run-dir "$check/run" > train.log 2>&1 || { cat train.log; exit 1; }
echo "worker processes start (train-demo, one step with a data worker)"
echo "bundle size: $(du -sh "$bundle" | cut -f1) ($bundle)"
