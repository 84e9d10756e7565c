#!/usr/bin/env bash
# The main job on the embedded synthetic 口算 set: generate the pages, train the
# small config on them, test it on the validation split with debug pictures.
# Run scripts/setup.sh first (README.md gives both as one command).
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=.venv/bin/python
CONFIG=${CONFIG:-CenterNet-tiny}
# OpenMP threads spin briefly before they sleep (scripts/openmp.sh)
source scripts/openmp.sh

# Deterministic for the seed: a second run finds the set and keeps it.
if [ ! -f data/ks/ks_val.txt ]; then
    $VPY -m db.synth --out data/ks --seed 0
fi
$VPY -m db.ks data/ks/ks_val.txt
$VPY train.py "$CONFIG"
$VPY test.py "$CONFIG" --testiter latest --split val --debug
