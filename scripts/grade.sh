#!/usr/bin/env bash
# Grading 口算 pages (README, "Grading pages"): train the recognizer, then grade
# the synthetic validation pages with the detector and the recognizer, with a
# JSON and a picture per page. Within 15 minutes on two CPU cores.
#
# It assumes the main command ran first (scripts/setup.sh && scripts/main.sh):
# the pages in data/ks and the detector's snapshot in cache/nnet/CenterNet-tiny/.
# Arguments go to grade.py, e.g. --set system.cache_dir=elsewhere for another
# detector snapshot folder, or --threshold 0.3.
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=.venv/bin/python
# Idle OpenMP threads spin 10,000 times, then sleep. Against sleeping at once
# (OMP_WAIT_POLICY=PASSIVE) that trained 1.20-1.28x faster alone and
# 1.07-1.09x beside a niced job, 0.76-0.88x beside another 2-thread PyTorch
# job; the runtime's own 300,000 spins: 1.16-1.45x, but 0.44-0.76x beside
# the PyTorch job (BENCHMARKS.md, thread-wait). Set either to choose otherwise.
if [ -z "${OMP_WAIT_POLICY:-}" ]; then
    export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
fi
CONFIG=${CONFIG:-CenterNet-tiny}
READER=${READER:-CRNN-tiny}
GRADE_OUT=${GRADE_OUT:-results/grade/$CONFIG/val}

# What each box reads (ks_<split>_text.jsonl) is written by the generator; a set
# generated before it existed gets it by generating again: the same pages, byte
# for byte (about 40 s).
if [ ! -f data/ks/ks_train_text.jsonl ] || [ ! -f data/ks/ks_val_text.jsonl ]; then
    $VPY -m db.synth --out data/ks --seed 0
fi
# At most 11 minutes of training: the learning rate decays with the time.
$VPY train_reader.py "$READER" --time-budget 11
$VPY grade.py "$CONFIG" --testiter latest --reader "$READER" \
    --images data/ks/ks_val.txt --out "$GRADE_OUT" "$@"
