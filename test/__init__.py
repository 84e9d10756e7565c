"""Test-time inference and evaluation of CenterNet (the original's test/ folder).

    kp_detection.py   one image -> final boxes: scales, padding, flip, network,
                      _decode, mapping back to image pixels
    center_check.py   the centre-point check of the keypoint triplets
    merge.py          scales merged, per-class soft-NMS, max_per_image
    evaluate.py       results.json, COCOeval, metrics.json, the per-category table
    pr_curves.py      per-category precision-recall curves at IoU 0.5 (numbers, PNG)
    boxes.py          box geometry: IoU, one-to-one matching, one box per place
    confusion.py      the confusion matrix with 'missed' and 'background' (numbers, PNG)
    visualize.py      debug pictures
    run.py            a split end to end; `run_test` for validation AP in training
    timing.py         per-stage times
    cli.py            what test.py and demo.py share on the command line
"""
