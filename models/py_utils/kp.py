"""The CenterNet network (Duan et al., "CenterNet: Keypoint Triplets for
Object Detection", ICCV 2019) and its training loss, on CornerNet's stacked
hourglass (Law & Deng, ECCV 2018). Names of classes and attributes are the
original's (Duankaiwen/CenterNet, models/py_utils/kp.py), so state dicts keep
the original's keys.

    images (B, 3, H, W)
      -> pre: 7x7 conv stride 2 (stem_dim) + residual stride 2 (dims[0])
      -> per stack: hourglass (kp_module) -> cnv (3x3 conv to cnv_dim)
           -> cascade corner pooling (top-left, bottom-right), center pooling
           -> heads: heatmaps (tl, br, ct), tags (tl, br), offsets (tl, br, ct)
         between stacks: inter = residual(relu(inters_(inter) + cnvs_(cnv)))

Heatmaps and offsets are at stride 4: (H - 1) // 4 + 1 per side. Every model
file under models/ calls `kp` with its sizes; nothing here reads a config.

Outputs travel by name (HEADS): `forward` gives one dict per stack, `predict`
the last stack's dict, and the loss and the decoder read them by name. Two
heads exist only when asked for (both off in the paper's networks):
- "ct_size" (center_size): the object's log width and log height, in heatmap
  cells, at its centre (as "Objects as Points" regresses sizes), so that the
  centre check can refuse corner pairs whose box disagrees with the centre
  inside it: on a grid of problems a top-left corner of one row and a
  bottom-right corner two rows down make a box whose central region holds
  the middle problem's centre;
- "box_cls" (box_classifier, training only): category logits of boxes
  read from their pixels by a small second-stage CNN
  (models/py_utils/box_classifier.py); the centre heatmap then has one
  channel ("is there a centre here") and `classify` names the boxes that
  the keypoints found.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .box_classifier import BoxClassifier, rois_of
from .hourglass import kp_module
from .kp_utils import _ae_loss, _neg_loss, _regr_loss, _sigmoid, _tranpose_and_gather_feat
from .layers import convolution, residual
from .pool_modules import CenterPooling, bottom_right_pooling, top_left_pooling


def make_kp_layer(cnv_dim, curr_dim, out_dim):
    """A head: 3x3 conv (bias, ReLU, no BatchNorm) then a 1x1 conv to out_dim."""
    return nn.Sequential(
        convolution(3, cnv_dim, curr_dim, with_bn=False),
        nn.Conv2d(curr_dim, out_dim, (1, 1)))


def _heads(nstack, cnv_dim, curr_dim, out_dim):
    return nn.ModuleList([make_kp_layer(cnv_dim, curr_dim, out_dim) for _ in range(nstack)])


# The maps of one stack, by name. Heats are logits; tags, offsets and sizes
# are read at the keypoints' flat indices in training (which index: GATHERED_AT).
HEADS = ("tl_heat", "br_heat", "ct_heat", "tl_tag", "br_tag", "tl_regr", "br_regr", "ct_regr")
GATHERED_AT = {"tl_tag": "tl", "br_tag": "br", "tl_regr": "tl", "br_regr": "br",
               "ct_regr": "ct", "ct_size": "ct"}


class kp(nn.Module):
    """CenterNet: `nstack` hourglasses with cascade corner and center pooling.

    n, dims, modules: the hourglass (n levels, n + 1 widths and block counts);
    categories: object categories; corner_categories / center_categories:
    channels of the corner / centre heatmaps (default `categories`; 1 for
    class-agnostic keypoints); cnv_dim: width after each hourglass; pool_dim:
    inner width of the pooling modules; stem_dim: width of the 7x7 stem;
    center_size: the size head; box_classifier: None, or the keyword
    arguments of BoxClassifier (module doc); pool_window: [vertical,
    horizontal] cells of bounded pools (None: to the border); head_dim:
    inner width of the heads (None: dims[0], as in CenterNet); heat_bias: the
    initial bias of the heatmaps' last convolution (system.heat_bias).
    """

    def __init__(self, n, nstack, dims, modules, categories, cnv_dim=256, pool_dim=128,
                 stem_dim=128, corner_categories=None, center_categories=None,
                 center_size=False, box_classifier=None, pool_window=None, head_dim=None,
                 heat_bias=-2.19):
        super().__init__()
        corner_categories = categories if corner_categories is None else corner_categories
        center_categories = categories if center_categories is None else center_categories
        self.nstack = nstack
        self.categories = categories
        self.corner_categories = corner_categories
        self.center_categories = center_categories
        curr_dim = dims[0]
        head_dim = curr_dim if head_dim is None else head_dim

        self.pre = nn.Sequential(
            convolution(7, 3, stem_dim, stride=2),
            residual(3, stem_dim, curr_dim, stride=2))

        self.kps = nn.ModuleList([kp_module(n, dims, modules) for _ in range(nstack)])
        self.cnvs = nn.ModuleList([convolution(3, curr_dim, cnv_dim) for _ in range(nstack)])

        self.tl_cnvs = nn.ModuleList([top_left_pooling(cnv_dim, pool_dim, pool_window)
                                      for _ in range(nstack)])
        self.br_cnvs = nn.ModuleList([bottom_right_pooling(cnv_dim, pool_dim, pool_window)
                                      for _ in range(nstack)])
        self.ct_cnvs = nn.ModuleList([CenterPooling(cnv_dim, pool_dim, pool_window)
                                      for _ in range(nstack)])

        self.tl_heats = _heads(nstack, cnv_dim, head_dim, corner_categories)
        self.br_heats = _heads(nstack, cnv_dim, head_dim, corner_categories)
        self.ct_heats = _heads(nstack, cnv_dim, head_dim, center_categories)
        self.tl_tags = _heads(nstack, cnv_dim, head_dim, 1)
        self.br_tags = _heads(nstack, cnv_dim, head_dim, 1)
        for heat in (*self.tl_heats, *self.br_heats, *self.ct_heats):
            # sigmoid(-2.19) ~ 0.1: a low prior for every pixel (focal-loss init)
            nn.init.constant_(heat[-1].bias, heat_bias)

        self.inters = nn.ModuleList([residual(3, curr_dim, curr_dim) for _ in range(nstack - 1)])
        self.inters_ = nn.ModuleList([
            nn.Sequential(nn.Conv2d(curr_dim, curr_dim, (1, 1), bias=False),
                          nn.BatchNorm2d(curr_dim))
            for _ in range(nstack - 1)])
        self.cnvs_ = nn.ModuleList([
            nn.Sequential(nn.Conv2d(cnv_dim, curr_dim, (1, 1), bias=False),
                          nn.BatchNorm2d(curr_dim))
            for _ in range(nstack - 1)])

        self.tl_regrs = _heads(nstack, cnv_dim, head_dim, 2)
        self.br_regrs = _heads(nstack, cnv_dim, head_dim, 2)
        self.ct_regrs = _heads(nstack, cnv_dim, head_dim, 2)
        # created only when asked for, so the paper's networks keep their
        # parameter counts and state-dict keys
        self.ct_sizes = _heads(nstack, cnv_dim, head_dim, 2) if center_size else None
        self.box_classifier = (BoxClassifier(categories, **box_classifier)
                               if box_classifier is not None else None)

        self.relu = nn.ReLU(inplace=True)

    @property
    def heads(self) -> tuple:
        """The names of the maps `predict` returns, in a fixed order."""
        return HEADS + (("ct_size",) if self.ct_sizes is not None else ())

    def _stacks(self, images):
        """Yield (stack index, cnv features) of every stack, in order."""
        inter = self.pre(images)
        for ind in range(self.nstack):
            cnv = self.cnvs[ind](self.kps[ind](inter))
            yield ind, cnv
            if ind < self.nstack - 1:
                inter = self.relu(self.inters_[ind](inter) + self.cnvs_[ind](cnv))
                inter = self.inters[ind](inter)

    def _head_maps(self, ind, cnv):
        tl_cnv = self.tl_cnvs[ind](cnv)
        br_cnv = self.br_cnvs[ind](cnv)
        ct_cnv = self.ct_cnvs[ind](cnv)
        maps = {
            "tl_heat": self.tl_heats[ind](tl_cnv),   # (B, corner_categories, h, w)
            "br_heat": self.br_heats[ind](br_cnv),
            "ct_heat": self.ct_heats[ind](ct_cnv),   # (B, center_categories, h, w)
            "tl_tag": self.tl_tags[ind](tl_cnv),     # (B, 1, h, w)
            "br_tag": self.br_tags[ind](br_cnv),
            "tl_regr": self.tl_regrs[ind](tl_cnv),   # (B, 2, h, w)
            "br_regr": self.br_regrs[ind](br_cnv),
            "ct_regr": self.ct_regrs[ind](ct_cnv),
        }
        if self.ct_sizes is not None:
            maps["ct_size"] = self.ct_sizes[ind](ct_cnv)   # (B, 2, h, w) log width, log height
        return maps

    def forward(self, images, tl_inds, br_inds, ct_inds, box_rois=None, box_images=None):
        """Training pass: images (B, 3, H, W); tl/br/ct_inds (B, L) int64 flat
        heatmap indices y * w + x of every object's keypoints; box_rois
        (B, K, 4) boxes to classify, in pixels of `box_images` (B, 3, H', W')
        when given (db.box_scale), else of `images` (x2 <= x1: an empty slot),
        for a network with a box classifier.

        Returns one dict per stack: the heats as raw maps (B, C, h, w); tags
        (B, L, 1), offsets and sizes (B, L, 2) gathered at the indices of
        their keypoint (GATHERED_AT); the last stack also holds "box_cls"
        (B, K, categories), the logits of the boxes (zeros in empty slots).
        """
        indices = {"tl": tl_inds, "br": br_inds, "ct": ct_inds}
        outs = []
        for ind, cnv in self._stacks(images):
            maps = self._head_maps(ind, cnv)
            outs.append({name: (_tranpose_and_gather_feat(value, indices[GATHERED_AT[name]])
                                if name in GATHERED_AT else value)
                         for name, value in maps.items()})
        if self.box_classifier is not None:
            if box_rois is None:
                raise ValueError("this network names boxes by their pixels: forward needs "
                                 "box_rois (the sampler gives them with db.classes_from boxes)")
            valid = box_rois[..., 2] > box_rois[..., 0]                      # (B, K)
            source = images if box_images is None else box_images.to(images.dtype)
            logits = self.classify(source, rois_of(box_rois.to(images.dtype), valid))
            box_cls = logits.new_zeros((*valid.shape, logits.shape[1]))
            box_cls[valid] = logits
            outs[-1]["box_cls"] = box_cls
        return outs

    def classify(self, images, rois):
        """Category logits (N, categories) of rois (N, 5) batch index, x1, y1,
        x2, y2 in pixels of `images` (B, 3, H, W), with the box classifier."""
        if self.box_classifier is None:
            raise ValueError("this network has no box classifier (db.classes_from is not boxes)")
        return self.box_classifier(images, rois)

    def predict(self, images):
        """Test pass: the last stack's raw maps by name (`heads`), (B, C, h, w)
        each. Earlier stacks only feed the next one (their heads are not run)."""
        for ind, cnv in self._stacks(images):
            if ind == self.nstack - 1:
                maps = self._head_maps(ind, cnv)
        return maps


class AELoss(nn.Module):
    """CenterNet's training loss: focal loss on the three heatmaps,
    pull/push on the corner tags, smooth-L1 on the three offsets, summed over
    the stacks (intermediate supervision) and divided by their number; with
    the optional heads, an L1 loss on the centres' log sizes and a
    cross-entropy on the box classifier's logits (not divided: one stage).

    loss(outs, targets): outs from `kp.forward` (a dict per stack); targets a
    dict of the sampler's arrays as tensors: tl_heatmap, br_heatmap,
    ct_heatmap (B, C, h, w), tag_mask (B, L) bool, tl_regr, br_regr, ct_regr
    (B, L, 2), and for the optional heads ct_size (B, L, 2), box_classes (B, K)
    int64 (-1: an empty slot). Returns a dict of 0-dim float32 tensors, LOSS_TERMS,
    each divided by the number of stacks; total is the weighted sum; a term
    whose head the network lacks is 0.
    """

    def __init__(self, pull_weight=0.1, push_weight=0.1, regr_weight=1, size_weight=1.0,
                 class_weight=1.0, focal_loss=_neg_loss, focal_alpha=2.0, focal_beta=4.0):
        super().__init__()
        self.pull_weight = pull_weight
        self.push_weight = push_weight
        self.regr_weight = regr_weight
        self.size_weight = size_weight
        self.class_weight = class_weight
        self.focal_loss = focal_loss
        self.focal_alpha = focal_alpha
        self.focal_beta = focal_beta
        self.ae_loss = _ae_loss
        self.regr_loss = _regr_loss

    def forward(self, outs, targets):
        if not outs or not all(isinstance(o, dict) for o in outs):
            raise ValueError("AELoss takes kp.forward's outputs: a dict of maps per stack")
        check_target_shapes(outs[0], targets)
        check_box_targets(outs[-1], targets)
        # losses in float32 whatever the network computed in (bf16/fp16 autocast)
        outs = [{name: value.float() for name, value in out.items()} for out in outs]
        targets = {name: (t.float() if t.is_floating_point() else t)
                   for name, t in targets.items()}
        mask = targets["tag_mask"]
        nstack = len(outs)
        zero = outs[0]["tl_heat"].new_zeros(())

        exponents = {"alpha": self.focal_alpha, "beta": self.focal_beta}
        focal = (self.focal_loss([_sigmoid(o["tl_heat"]) for o in outs], targets["tl_heatmap"],
                                 **exponents)
                 + self.focal_loss([_sigmoid(o["br_heat"]) for o in outs], targets["br_heatmap"],
                                   **exponents)
                 + self.focal_loss([_sigmoid(o["ct_heat"]) for o in outs], targets["ct_heatmap"],
                                   **exponents))

        pull, push = zero, zero
        for out in outs:
            stack_pull, stack_push = self.ae_loss(out["tl_tag"], out["br_tag"], mask)
            pull = pull + stack_pull
            push = push + stack_push

        regr = zero
        for out in outs:
            regr = (regr + self.regr_loss(out["tl_regr"], targets["tl_regr"], mask)
                    + self.regr_loss(out["br_regr"], targets["br_regr"], mask)
                    + self.regr_loss(out["ct_regr"], targets["ct_regr"], mask))

        size = zero
        if "ct_size" in outs[0]:
            for out in outs:
                size = size + _size_loss(out["ct_size"], targets["ct_size"], mask)

        terms = {"focal": focal, "pull": self.pull_weight * pull,
                 "push": self.push_weight * push, "regr": self.regr_weight * regr,
                 "size": self.size_weight * size}
        terms = {name: value / nstack for name, value in terms.items()}
        terms["class"] = zero
        if "box_cls" in outs[-1]:
            terms["class"] = self.class_weight * _box_class_loss(outs[-1]["box_cls"],
                                                                 targets["box_classes"])
        return {"total": sum(terms.values()), **terms}


# The loss terms, in the order logs and progress bars show them.
LOSS_TERMS = ("total", "focal", "pull", "push", "regr", "size", "class")

# Which target each output is compared with, and the config key that sets
# the width both must have (for the error message of a mismatch).
_TARGET_OF = {
    "tl_heat": ("tl_heatmap", "db.categories / db.class_agnostic_corners"),
    "br_heat": ("br_heatmap", "db.categories / db.class_agnostic_corners"),
    "ct_heat": ("ct_heatmap", "db.categories / db.classes_from"),
    "tl_regr": ("tl_regr", "db.max_tag_len"),
    "br_regr": ("br_regr", "db.max_tag_len"),
    "ct_regr": ("ct_regr", "db.max_tag_len"),
    "ct_size": ("ct_size", "db.center_size / db.max_tag_len"),
}


def check_target_shapes(out: dict, targets: dict) -> None:
    """Raise ValueError naming the head, both shapes and the config key when
    a target does not fit the network's output it is compared with."""
    for head, (target, key) in _TARGET_OF.items():
        if head not in out:
            continue
        if target not in targets:
            raise ValueError(f"the network has a {head!r} head but the targets hold no "
                             f"{target!r} (set by {key})")
        if tuple(out[head].shape) != tuple(targets[target].shape):
            raise ValueError(f"head {head!r} gives {tuple(out[head].shape)} but target {target!r} "
                             f"is {tuple(targets[target].shape)}: {key} must be the same for the "
                             f"network and the sampler")

def check_box_targets(out: dict, targets: dict) -> None:
    if "box_cls" not in out:
        return
    if "box_classes" not in targets:
        raise ValueError("the network has a box classifier but the targets hold no "
                         "'box_classes' (set by db.classes_from boxes)")
    if tuple(targets["box_classes"].shape) != tuple(out["box_cls"].shape[:2]):
        raise ValueError(f"head 'box_cls' gives {tuple(out['box_cls'].shape)} but target "
                         f"'box_classes' is {tuple(targets['box_classes'].shape)}: "
                         f"db.boxes_per_image must be the same for the network and the sampler")


def _size_loss(size, gt_size, mask):
    """L1 between predicted and true log sizes (B, L, 2) of the objects in
    mask, divided by the number of objects."""
    mask = mask.bool().unsqueeze(2)
    num = mask.sum().to(size.dtype)
    return torch.where(mask, (size - gt_size).abs(), 0).sum() / (num + 1e-4)


def _box_class_loss(logits, labels):
    """Mean cross-entropy of box logits (B, K, C) over the slots of labels
    (B, K) that hold a box (-1: empty)."""
    count = (labels >= 0).sum().clamp(min=1).to(logits.dtype)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-1,
                           reduction="sum") / count
