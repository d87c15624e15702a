#!/usr/bin/env bash
# Download the wheels `make gpu-check` needs on a GPU machine that cannot reach a package index: nbval, nbclient,
# nbformat, ipykernel, jupyter_client, platformdirs and everything they depend on, for CPython 3.12 on x86-64 Linux
# (PYTHON_VERSION=3.11 etc. for another). torch and the packages that machine already has are filtered out later,
# by scripts/gpu-check.sh, so it does not matter that some are downloaded here. Run it on a machine with internet
# access, from anywhere; the wheels go to wheels/ (git-ignored), which travels with the tree to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] && PYTHON=${PYTHON_FOR_PIP:-.venv/bin/python}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
DEST=${WHEELS:-wheels}
PACKAGES=(nbval nbclient nbformat ipykernel jupyter_client platformdirs)

# wheels/ must never be committed: ignore it locally when .gitignore does not already.
if [[ "$DEST" != /* ]] && [ -e .git ] && ! git check-ignore -q "$DEST/x.whl" 2>/dev/null; then
    echo "/$DEST/" >> .git/info/exclude
fi
mkdir -p "$DEST"
platforms=()
for tag in manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_24_x86_64 manylinux_2_26_x86_64 \
           manylinux_2_27_x86_64 manylinux_2_28_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64; do
    platforms+=(--platform "$tag")
done
"$PYTHON" -m pip download --quiet --only-binary=:all: --implementation cp --python-version "$PYTHON_VERSION" \
    "${platforms[@]}" -d "$DEST" "${PACKAGES[@]}"
rm -f "$DEST"/torch-*.whl "$DEST"/nvidia_*.whl "$DEST"/triton-*.whl
echo "$(ls "$DEST"/*.whl | wc -l) wheels ($(du -sh "$DEST" | cut -f1)) in $DEST/ for Python $PYTHON_VERSION"
