"""Reading and grading 口算 problems (issue 14): a CRNN recognizer of one
problem crop (printed part and handwritten answer, two CTC heads), its config,
training, and the grading of a page from the detector's boxes.

    reader/arithmetic.py   the printed text -> a problem; exact grading of an answer
    reader/text.py         alphabets, CTC targets and greedy decoding, ks_<split>_text.jsonl
    reader/config.py       the recognizer's config schema (config/reader/<name>.json)
    reader/crops.py        one box of a page -> one network input (margins, jitter, resize)
    reader/model.py        the CRNN
    reader/engine.py       training (train_reader.py), snapshots, loading a trained reader
    reader/grading.py      detections + readings -> right/wrong/unanswered/unreadable, JSON, picture
"""
