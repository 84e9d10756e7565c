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
# OpenMP threads spin briefly before they sleep (scripts/openmp.sh)
source scripts/openmp.sh
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
