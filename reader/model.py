"""The recognizer: a small CRNN (Shi, Bai and Yao, "An End-to-End Trainable
Neural Network for Image-based Sequence Recognition", TPAMI 2017) with two
CTC heads (Graves et al., ICML 2006) over one shared sequence of features:
one reads the printed problem, the other the pupil's handwritten answer.

    crop (B, 3, H, W)
      -> convolution blocks (3x3 conv, batch norm, ReLU, max-pool): every block
         halves the height, the first two the width too (reader.stem "stride":
         the first block a stride-2 convolution instead, 4x less work at full size)
      -> the remaining rows flattened into each column: (W/4, B, C x rows)
      -> a linear projection and a bidirectional LSTM (reader.sequence "lstm"; or
         "conv": two 1-D convolutions along the columns)
      -> printed head (W/4, B, |printed alphabet| + 1)
         answer head  (W/4, B, |answer alphabet| + 1), class 0 the blank

Both heads see the whole crop: the answer head learns to emit only the
handwriting (after the "=", inside "( )" or the compare circle), the printed
head only the print, each aligned by its own CTC loss.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class Readings(NamedTuple):
    printed: torch.Tensor   # (T, B, printed classes) log-probabilities
    answer: torch.Tensor    # (T, B, answer classes) log-probabilities


class CRNN(nn.Module):
    def __init__(self, crop_height: int, channels: list[int], hidden: int, printed_classes: int,
                 answer_classes: int, sequence: str = "lstm", stem: str = "pool"):
        super().__init__()
        blocks, width, rows = [], 3, crop_height
        for i, out in enumerate(channels):
            if i == 0 and stem == "stride":  # the same halving, at a quarter of the work
                blocks += [nn.Conv2d(width, out, 3, stride=2, padding=1, bias=False),
                           nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            else:
                blocks += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                           nn.ReLU(inplace=True), nn.MaxPool2d((2, 2) if i < 2 else (2, 1))]
            width, rows = out, rows // 2
        self.features = nn.Sequential(*blocks)
        self.project = nn.Linear(width * rows, hidden)
        self.sequence_kind = sequence
        if sequence == "lstm":
            self.sequence = nn.LSTM(hidden, hidden, bidirectional=True)
        else:  # two 1-D convolutions along the columns, 5 wide: a cheaper context
            self.sequence = nn.Sequential(
                nn.Conv1d(hidden, 2 * hidden, 5, padding=2), nn.BatchNorm1d(2 * hidden),
                nn.ReLU(inplace=True),
                nn.Conv1d(2 * hidden, 2 * hidden, 5, padding=2), nn.BatchNorm1d(2 * hidden),
                nn.ReLU(inplace=True))
        self.printed_head = nn.Linear(2 * hidden, printed_classes)
        self.answer_head = nn.Linear(2 * hidden, answer_classes)

    def forward(self, crops: torch.Tensor) -> Readings:
        # channels-last convolutions: 1.2x faster on the CPU (BENCHMARKS.md, "Grading")
        features = self.features(crops.contiguous(memory_format=torch.channels_last))
        b, c, rows, steps = features.shape
        columns = features.permute(3, 0, 1, 2).reshape(steps, b, c * rows)   # (T, B, C x rows)
        projected = torch.relu(self.project(columns))                        # (T, B, hidden)
        if self.sequence_kind == "lstm":
            sequence, _ = self.sequence(projected)                           # (T, B, 2 hidden)
        else:
            sequence = self.sequence(projected.permute(1, 2, 0)).permute(2, 0, 1)
        return Readings(printed=self.printed_head(sequence).log_softmax(dim=2),
                        answer=self.answer_head(sequence).log_softmax(dim=2))


def build_reader_network(settings) -> CRNN:
    """The CRNN of a reader config's `reader` section."""
    network = CRNN(settings.crop_height, list(settings.channels), settings.hidden,
                   len(settings.printed_alphabet) + 1, len(settings.answer_alphabet) + 1,
                   settings.sequence, settings.stem)
    return network.to(memory_format=torch.channels_last)
