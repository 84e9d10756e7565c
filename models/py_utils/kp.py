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
"""

from torch import nn

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


class kp(nn.Module):
    """CenterNet: `nstack` hourglasses with cascade corner and center pooling.

    n, dims, modules: the hourglass (n levels, n + 1 widths and block counts);
    categories: channels of the centre heatmap (and of the corner heatmaps,
    unless corner_categories says otherwise: 1 for class-agnostic corners);
    cnv_dim: width after each hourglass; pool_dim: inner width of the
    pooling modules; stem_dim: width of the 7x7 stem convolution.
    """

    def __init__(self, n, nstack, dims, modules, categories, cnv_dim=256, pool_dim=128,
                 stem_dim=128, corner_categories=None):
        super().__init__()
        if corner_categories is None:
            corner_categories = categories
        self.nstack = nstack
        self.categories = categories
        self.corner_categories = corner_categories
        curr_dim = dims[0]

        self.pre = nn.Sequential(
            convolution(7, 3, stem_dim, stride=2),
            residual(3, stem_dim, curr_dim, stride=2))

        self.kps = nn.ModuleList([kp_module(n, dims, modules) for _ in range(nstack)])
        self.cnvs = nn.ModuleList([convolution(3, curr_dim, cnv_dim) for _ in range(nstack)])

        self.tl_cnvs = nn.ModuleList([top_left_pooling(cnv_dim, pool_dim) for _ in range(nstack)])
        self.br_cnvs = nn.ModuleList([bottom_right_pooling(cnv_dim, pool_dim) for _ in range(nstack)])
        self.ct_cnvs = nn.ModuleList([CenterPooling(cnv_dim, pool_dim) for _ in range(nstack)])

        self.tl_heats = _heads(nstack, cnv_dim, curr_dim, corner_categories)
        self.br_heats = _heads(nstack, cnv_dim, curr_dim, corner_categories)
        self.ct_heats = _heads(nstack, cnv_dim, curr_dim, categories)
        self.tl_tags = _heads(nstack, cnv_dim, curr_dim, 1)
        self.br_tags = _heads(nstack, cnv_dim, curr_dim, 1)
        for heat in (*self.tl_heats, *self.br_heats, *self.ct_heats):
            # sigmoid(-2.19) ~ 0.1: a low prior for every pixel (focal-loss init)
            nn.init.constant_(heat[-1].bias, -2.19)

        self.inters = nn.ModuleList([residual(3, curr_dim, curr_dim) for _ in range(nstack - 1)])
        self.inters_ = nn.ModuleList([
            nn.Sequential(nn.Conv2d(curr_dim, curr_dim, (1, 1), bias=False),
                          nn.BatchNorm2d(curr_dim))
            for _ in range(nstack - 1)])
        self.cnvs_ = nn.ModuleList([
            nn.Sequential(nn.Conv2d(cnv_dim, curr_dim, (1, 1), bias=False),
                          nn.BatchNorm2d(curr_dim))
            for _ in range(nstack - 1)])

        self.tl_regrs = _heads(nstack, cnv_dim, curr_dim, 2)
        self.br_regrs = _heads(nstack, cnv_dim, curr_dim, 2)
        self.ct_regrs = _heads(nstack, cnv_dim, curr_dim, 2)

        self.relu = nn.ReLU(inplace=True)

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
        return {
            "tl_heat": self.tl_heats[ind](tl_cnv),   # (B, corner_categories, h, w)
            "br_heat": self.br_heats[ind](br_cnv),
            "ct_heat": self.ct_heats[ind](ct_cnv),   # (B, categories, h, w)
            "tl_tag": self.tl_tags[ind](tl_cnv),     # (B, 1, h, w)
            "br_tag": self.br_tags[ind](br_cnv),
            "tl_regr": self.tl_regrs[ind](tl_cnv),   # (B, 2, h, w)
            "br_regr": self.br_regrs[ind](br_cnv),
            "ct_regr": self.ct_regrs[ind](ct_cnv),
        }

    def forward(self, images, tl_inds, br_inds, ct_inds):
        """Training pass: images (B, 3, H, W); tl/br/ct_inds (B, L) int64 flat
        heatmap indices y * w + x of every object's keypoints.

        Returns a list of 8 tensors per stack, in order: tl_heat, br_heat,
        ct_heat (raw logits, (B, C, h, w)), tl_tag, br_tag (B, L, 1), tl_regr,
        br_regr, ct_regr (B, L, 2), the last four gathered at the indices.
        """
        outs = []
        for ind, cnv in self._stacks(images):
            maps = self._head_maps(ind, cnv)
            outs += [
                maps["tl_heat"], maps["br_heat"], maps["ct_heat"],
                _tranpose_and_gather_feat(maps["tl_tag"], tl_inds),
                _tranpose_and_gather_feat(maps["br_tag"], br_inds),
                _tranpose_and_gather_feat(maps["tl_regr"], tl_inds),
                _tranpose_and_gather_feat(maps["br_regr"], br_inds),
                _tranpose_and_gather_feat(maps["ct_regr"], ct_inds),
            ]
        return outs

    def predict(self, images):
        """Test pass: the last stack's raw maps, in `_decode`'s argument order:
        (tl_heat, br_heat, tl_tag, br_tag, tl_regr, br_regr, ct_heat, ct_regr).
        Earlier stacks only feed the next one (their heads are not run)."""
        for ind, cnv in self._stacks(images):
            if ind == self.nstack - 1:
                maps = self._head_maps(ind, cnv)
        return (maps["tl_heat"], maps["br_heat"], maps["tl_tag"], maps["br_tag"],
                maps["tl_regr"], maps["br_regr"], maps["ct_heat"], maps["ct_regr"])


class AELoss(nn.Module):
    """CenterNet's training loss: focal loss on the three heatmaps,
    pull/push on the corner tags, smooth-L1 on the three offsets, summed over
    the stacks (intermediate supervision) and divided by their number.

    loss(outs, targets) with outs from `kp.forward` and targets =
    [gt_tl_heat, gt_br_heat, gt_ct_heat (B, C, h, w), gt_mask (B, L) bool,
     gt_tl_regr, gt_br_regr, gt_ct_regr (B, L, 2)] returns 0-dim float32
    tensors (total, focal, pull, push, regr), each divided by the number of
    stacks; total = focal + pull + push + regr (weights applied).
    """

    def __init__(self, pull_weight=0.1, push_weight=0.1, regr_weight=1, focal_loss=_neg_loss):
        super().__init__()
        self.pull_weight = pull_weight
        self.push_weight = push_weight
        self.regr_weight = regr_weight
        self.focal_loss = focal_loss
        self.ae_loss = _ae_loss
        self.regr_loss = _regr_loss

    def forward(self, outs, targets):
        if len(outs) == 0 or len(outs) % 8:
            raise ValueError(f"AELoss takes 8 outputs per stack, got {len(outs)}")
        # losses in float32 whatever the network computed in (bf16/fp16 autocast)
        outs = [o.float() for o in outs]
        gt_tl_heat, gt_br_heat, gt_ct_heat, gt_mask, gt_tl_regr, gt_br_regr, gt_ct_regr = (
            t.float() if t.is_floating_point() else t for t in targets)
        nstack = len(outs) // 8
        tl_heats, br_heats, ct_heats = outs[0::8], outs[1::8], outs[2::8]
        tl_tags, br_tags = outs[3::8], outs[4::8]
        tl_regrs, br_regrs, ct_regrs = outs[5::8], outs[6::8], outs[7::8]

        focal_loss = (self.focal_loss([_sigmoid(t) for t in tl_heats], gt_tl_heat)
                      + self.focal_loss([_sigmoid(b) for b in br_heats], gt_br_heat)
                      + self.focal_loss([_sigmoid(c) for c in ct_heats], gt_ct_heat))

        pull_loss, push_loss = 0, 0
        for tl_tag, br_tag in zip(tl_tags, br_tags):
            pull, push = self.ae_loss(tl_tag, br_tag, gt_mask)
            pull_loss = pull_loss + pull
            push_loss = push_loss + push
        pull_loss = self.pull_weight * pull_loss
        push_loss = self.push_weight * push_loss

        regr_loss = 0
        for tl_regr, br_regr, ct_regr in zip(tl_regrs, br_regrs, ct_regrs):
            regr_loss = (regr_loss
                         + self.regr_loss(tl_regr, gt_tl_regr, gt_mask)
                         + self.regr_loss(br_regr, gt_br_regr, gt_mask)
                         + self.regr_loss(ct_regr, gt_ct_regr, gt_mask))
        regr_loss = self.regr_weight * regr_loss

        total = (focal_loss + pull_loss + push_loss + regr_loss) / nstack
        return (total, focal_loss / nstack, pull_loss / nstack,
                push_loss / nstack, regr_loss / nstack)
