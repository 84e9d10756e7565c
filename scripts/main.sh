#!/usr/bin/env bash
# The main job on the embedded synthetic 口算 set: generate the pages, train the
# small config on them, test it on the validation split with debug pictures.
# Run scripts/setup.sh first (README.md gives both as one command).
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=.venv/bin/python
CONFIG=${CONFIG:-CenterNet-tiny}
# Idle OpenMP threads spin 10,000 times, then sleep. Against sleeping at once
# (OMP_WAIT_POLICY=PASSIVE) that trained 1.20-1.28x faster alone and
# 1.07-1.09x beside a niced job, 0.76-0.88x beside another 2-thread PyTorch
# job; the runtime's own 300,000 spins: 1.16-1.45x, but 0.44-0.76x beside
# the PyTorch job (BENCHMARKS.md, thread-wait). Set either to choose otherwise.
if [ -z "${OMP_WAIT_POLICY:-}" ]; then
    export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
fi

# Deterministic for the seed: a second run finds the set and keeps it.
if [ ! -f data/ks/ks_val.txt ]; then
    $VPY -m db.synth --out data/ks --seed 0
fi
$VPY -m db.ks data/ks/ks_val.txt
$VPY train.py "$CONFIG"
$VPY test.py "$CONFIG" --testiter latest --split val --debug
