"""Naming a box from its pixels: a small CNN on a fixed-size crop of the
network input under each box (torchvision.ops.roi_align), for
`db.classes_from` "boxes".

On a 口算 page the six categories differ by one operator sign of a few pixels
(+ - x ÷), a circle (compare) or a pair of parentheses (fill), somewhere
along a problem several times longer than tall. CenterNet reads the category
at the centre keypoint, one heatmap cell at stride 4, which a small network
learns only after thousands of steps (BENCHMARKS.md, ablation sections).
Here the keypoints find the box with class-agnostic heatmaps, and the
category comes from the whole box, seen at the input's own resolution:

    crop  (N, 3, crop_h, crop_w)   roi_align of the normalised input, bilinear,
                                   the box stretched to the crop
    2 x conv-BN-ReLU, max-pool 2   widths[0], widths[1]
    2 x conv-BN-ReLU, max-pool 2   widths[2], widths[3]
    conv-BN-ReLU, then             widths[4]
      pooling "global": max over the crop ("is there a + anywhere"), or
      pooling "columns": max over each column's height, the columns kept in
        order (crop_w / 4 of them): a problem of several operators is named
        by its first one (ks-format.md), which a global max cannot tell
    linear                         (N, categories) logits

Training crops the ground-truth boxes of each example, jittered as the
detector's boxes are (sample/kp_detection.py); testing crops the boxes kept
after the centre check and NMS (test/kp_detection.py).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import roi_align


def _block(inp, out):
    return nn.Sequential(nn.Conv2d(inp, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                         nn.ReLU(inplace=True))


class BoxClassifier(nn.Module):
    """Category logits of boxes on a batch of network inputs.

    crop_size: (height, width) of each crop; widths: five channel widths;
    pooling: "global" or "columns" (module doc)."""

    def __init__(self, categories, crop_size=(16, 80), widths=(16, 32, 32, 64, 64),
                 pooling="global"):
        super().__init__()
        if pooling not in ("global", "columns"):
            raise ValueError(f"box classifier pooling must be 'global' or 'columns', got {pooling!r}")
        self.crop_size = tuple(crop_size)
        columns = 1 if pooling == "global" else max(1, self.crop_size[1] // 4)
        self.features = nn.Sequential(
            _block(3, widths[0]), _block(widths[0], widths[1]), nn.MaxPool2d(2),
            _block(widths[1], widths[2]), _block(widths[2], widths[3]), nn.MaxPool2d(2),
            _block(widths[3], widths[4]), nn.AdaptiveMaxPool2d((1, columns)), nn.Flatten())
        self.logits = nn.Linear(widths[4] * columns, categories)

    def forward(self, images, rois):
        """images (B, 3, H, W); rois (N, 5) batch index, x1, y1, x2, y2 in
        input pixels -> (N, categories) logits."""
        # no rois still runs the layers on an empty batch: every parameter
        # then gets a (zero) gradient, as DistributedDataParallel requires
        crops = roi_align(images, rois.to(images.dtype), self.crop_size, spatial_scale=1.0,
                          sampling_ratio=2, aligned=True)
        return self.logits(self.features(crops))


def rois_of(boxes, valid):
    """(B, K, 4) boxes and a (B, K) bool mask -> (N, 5) rois of the valid ones."""
    batch_index = torch.arange(boxes.shape[0], device=boxes.device).view(-1, 1)
    batch_index = batch_index.expand(boxes.shape[:2])
    return torch.cat([batch_index[valid].unsqueeze(1).to(boxes.dtype), boxes[valid]], dim=1)
