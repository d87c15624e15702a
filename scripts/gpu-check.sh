#!/usr/bin/env bash
# `make gpu-check`: run every solution notebook under nbval on the GPU (MLRE_DEVICE=cuda), then the tests that
# exercise the checks on that device. Made for a GPU machine that has Python, torch, numpy, einops, matplotlib and
# pytest but no Jupyter and no package index: the missing packages come from wheels/ (fill it beforehand with
# scripts/fetch-gpu-wheels.sh and carry it with the tree). The lab is never pip-installed with its dependencies,
# so pip cannot replace the machine's own torch build.
#
#   bash scripts/gpu-check.sh                   # on the GPU machine
#   MLRE_DEVICE=cpu bash scripts/gpu-check.sh   # the same steps on a CPU, to try the script
#
# Variables: PYTHON (default python3), MLRE_DEVICE (default cuda), WHEELS (default wheels), GPU_CHECK_SITE (where
# wheels are installed, default /tmp/mlre-gpu-site), GPU_CHECK_TESTS (test files to run after nbval; default
# tests/test_checking.py and the checks' mutation tests; empty for none).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export MLRE_DEVICE=${MLRE_DEVICE:-cuda}
WHEELS=${WHEELS:-wheels}
SITE=${GPU_CHECK_SITE:-/tmp/mlre-gpu-site}
TESTS=${GPU_CHECK_TESTS-tests/test_checking.py tests/test_checks_*.py}

echo "== gpu-check: $("$PYTHON" -V 2>&1) at $(command -v "$PYTHON"), MLRE_DEVICE=$MLRE_DEVICE"

# 1. Packages this Python lacks, from the carried wheels: only those not installed already, without dependencies
#    (each dependency is a wheel of its own), into a separate folder put first on the path.
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    mapfile -t missing < <("$PYTHON" - "$WHEELS" <<'PY'
import re, sys
from importlib import metadata
from pathlib import Path

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

have = {norm(d.metadata["Name"]) for d in metadata.distributions() if d.metadata["Name"]}
for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    if norm(wheel.name.split("-")[0]) not in have:
        print(wheel)
PY
)
    if ((${#missing[@]})); then
        echo "== installing ${#missing[@]} missing packages from $WHEELS/ into $SITE"
        "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" "${missing[@]}"
    fi
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi

# 2. The lab itself, importable from this tree (no install, so nothing can pull torch).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" - <<'PY'
import importlib.util
import sys
needed = ["torch", "numpy", "einops", "matplotlib", "pytest", "nbval", "nbclient", "nbformat", "ipykernel",
          "jupyter_client", "platformdirs"]
absent = [name for name in needed if importlib.util.find_spec(name) is None]
if absent:
    sys.exit(f"gpu-check: missing Python packages {absent}: run scripts/fetch-gpu-wheels.sh where pip works and "
             "carry wheels/ with the tree.")
import torch
from mlre_lab.core import default_device
device = default_device()  # fails, naming MLRE_DEVICE, when the GPU is not there
x = torch.arange(4.0, device=device).reshape(2, 2)
assert (x @ x).sum().item() == 22.0, "a 2x2 matmul gave the wrong answer on " + str(device)
name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
print(f"== torch {torch.__version__} computes on {device} ({name})")
PY

# 3. Every solution notebook under nbval, in a kernel of this same Python (which inherits MLRE_DEVICE).
status=0
shopt -s nullglob
solutions=(solutions/*.ipynb)
if ((${#solutions[@]})); then
    echo "== nbval over ${#solutions[@]} solution notebooks on $MLRE_DEVICE"
    "$PYTHON" -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider -q "${solutions[@]}" || status=1
else
    echo "== no solution notebooks in solutions/"
fi

# 4. The tests that run the checks (and their mutants) on this device.
tests=()
for t in $TESTS; do [ -f "$t" ] && tests+=("$t"); done
if ((${#tests[@]})); then
    echo "== pytest ${tests[*]} on $MLRE_DEVICE"
    "$PYTHON" -m pytest -q -x -p no:cacheprovider "${tests[@]}" || status=1
fi
if ((status)); then echo "== gpu-check FAILED on $MLRE_DEVICE"; else echo "== gpu-check passed on $MLRE_DEVICE"; fi
exit $status
