"""Losses and decoding of CenterNet (Duan et al., ICCV 2019), on the
CornerNet recipe (Law & Deng, ECCV 2018), with the original functions' names
and calling conventions (Duankaiwen/CenterNet, models/py_utils/kp_utils.py).

Losses (paper eq. 1-4 of CornerNet, plus the centre terms of CenterNet):
  `_neg_loss`  focal loss on heatmaps (alpha 2, beta 4 by default), per stack
  `_ae_loss`   associative-embedding pull/push loss on corner tags
  `_regr_loss` smooth-L1 loss on sub-pixel offsets
Decoding: `_decode` turns the last stack's raw maps into corner-pair boxes
and centre keypoints (the tester then keeps boxes whose central region holds
a centre of the same class).

Where these differ from the original's (bugs it had), see
docs/differences-from-the-original.md.
"""

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------
# gathering
# --------------------------------------------------------------------------

def _gather_feat(feat, ind, mask=None):
    """feat (B, N, D), ind (B, L) -> (B, L, D); with a (B, L) mask, the
    selected rows (M, D)."""
    dim = feat.size(2)
    feat = feat.gather(1, ind.unsqueeze(2).expand(ind.size(0), ind.size(1), dim))
    if mask is not None:
        feat = feat[mask.bool()]
    return feat


def _tranpose_and_gather_feat(feat, ind):
    """feat (B, C, H, W), ind (B, L) flat indices y * W + x -> (B, L, C).

    Gathers along the flattened spatial axis, which is a view for NCHW and
    channels-last tensors alike, so the map itself is never copied.
    """
    batch, channels = feat.shape[:2]
    flat = feat.flatten(2)  # (B, C, H*W)
    index = ind.unsqueeze(1).expand(batch, channels, ind.size(1))
    return flat.gather(2, index).transpose(1, 2)


# --------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------

def _sigmoid(x):
    """Sigmoid clamped to [1e-4, 1 - 1e-4], so the focal loss's logs stay
    finite; a new tensor, `x` is left as it is."""
    return torch.clamp(x.sigmoid(), min=1e-4, max=1 - 1e-4)


def _neg_loss(preds, gt, alpha=2.0, beta=4.0):
    """Focal loss of CornerNet, summed over the stacks; alpha and beta are the
    paper's (system.focal_alpha, system.focal_beta).

    preds: list of (B, C, H, W) probabilities (after `_sigmoid`); gt: the
    (B, C, H, W) target heatmap, 1 at objects, a gaussian bump around them.
    Per prediction: -(pos + neg) / num_pos, or -neg when there is no object,
    pos = sum log(p) (1 - p)^alpha at objects, neg = sum log(1 - p) p^alpha
    (1 - y)^beta elsewhere.
    """
    pos = gt.eq(1)
    neg = gt.lt(1)
    neg_weights = torch.pow(1 - gt, beta)
    # with no positives pos_sum is 0, so dividing by max(num_pos, 1) gives
    # exactly the original's "-neg" branch without a host round trip
    num_pos = pos.sum().clamp(min=1).to(gt.dtype)

    loss = 0
    for pred in preds:
        pos_loss = torch.where(pos, torch.log(pred) * torch.pow(1 - pred, alpha), 0).sum()
        neg_loss = torch.where(neg, torch.log(1 - pred) * torch.pow(pred, alpha) * neg_weights,
                               0).sum()
        loss = loss - (pos_loss + neg_loss) / num_pos
    return loss


def _ae_loss(tag0, tag1, mask):
    """Pull and push losses of associative embedding (Newell et al. 2017) on
    the corner tags, as CornerNet defines them.

    tag0, tag1: (B, L, 1) or (B, L) top-left and bottom-right tags of the
    objects; mask: (B, L) bool or uint8, which of the L slots hold an object.
    pull = sum over objects of ((t0 - m)^2 + (t1 - m)^2) / num, m = (t0 + t1) / 2
    push = sum over ordered pairs j != k of objects of
           relu(1 - |m_j - m_k|) / (num * (num - 1))
    with num the image's object count, 1e-4 added to each denominator, and
    the j == k diagonal summed too (its terms nearly cancel), as CornerNet
    computes it. An image of fewer than two objects adds nothing to push; a
    batch of one image and bool masks work like any other.
    """
    batch, slots = mask.shape
    valid = mask.bool().to(tag0.dtype)                       # (B, L)
    tag0 = tag0.reshape(batch, slots)
    tag1 = tag1.reshape(batch, slots)
    num = valid.sum(dim=1, keepdim=True)                     # (B, 1)

    tag_mean = (tag0 + tag1) / 2
    pull0 = torch.pow(tag0 - tag_mean, 2) / (num + 1e-4)
    pull1 = torch.pow(tag1 - tag_mean, 2) / (num + 1e-4)
    pull = (pull0 * valid).sum() + (pull1 * valid).sum()

    pairs = valid.unsqueeze(1) * valid.unsqueeze(2)          # (B, L, L)
    num = num.unsqueeze(2)                                   # (B, 1, 1)
    num2 = (num - 1) * num
    dist = tag_mean.unsqueeze(1) - tag_mean.unsqueeze(2)     # (B, L, L)
    dist = F.relu(1 - torch.abs(dist))
    dist = dist - 1 / (num + 1e-4)
    dist = dist / (num2 + 1e-4)
    has_pairs = (num >= 2).to(dist.dtype)
    push = (dist * (pairs * has_pairs)).sum()
    return pull, push


def _regr_loss(regr, gt_regr, mask):
    """Smooth-L1 (summed) between predicted and target offsets (B, L, 2) of
    the objects in mask (B, L), divided by the number of objects."""
    mask = mask.bool()
    num = mask.sum().to(regr.dtype)
    per_value = F.smooth_l1_loss(regr, gt_regr, reduction="none")
    per_value = torch.where(mask.unsqueeze(2), per_value, 0)
    return per_value.sum() / (num + 1e-4)


# --------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------

def _nms(heat, kernel=1):
    """Keep the local maxima of a kernel x kernel window, zero the rest."""
    pad = (kernel - 1) // 2
    hmax = F.max_pool2d(heat, (kernel, kernel), stride=1, padding=pad)
    return heat * (hmax == heat)


def _topk(scores, K=20):
    """Top K of (B, C, H, W) scores over all classes jointly, per image.

    Returns scores (B, K), flat spatial indices y * W + x (B, K), classes
    (B, K) int64, ys and xs (B, K) float32.
    """
    batch, cat, height, width = scores.shape
    topk_scores, topk_inds = torch.topk(scores.reshape(batch, -1), K)
    topk_clses = torch.div(topk_inds, height * width, rounding_mode="floor")
    topk_inds = topk_inds % (height * width)
    topk_ys = torch.div(topk_inds, width, rounding_mode="floor").float()
    topk_xs = (topk_inds % width).float()
    return topk_scores, topk_inds, topk_clses, topk_ys, topk_xs


def _decode(tl_heat, br_heat, tl_tag, br_tag, tl_regr, br_regr, ct_heat, ct_regr,
            ct_size=None, K=100, kernel=1, ae_threshold=1, num_dets=1000):
    """Boxes from corner pairs and centre keypoints, in heatmap coordinates.

    Inputs are the raw maps of `kp.predict`, by name (`_decode(**maps, K=...)`):
    heats are logits (B, C, H, W), tags (B, 1, H, W), offsets and sizes
    (B, 2, H, W). Keeps the K
    strongest peaks (kernel x kernel local maxima) of each heatmap; every
    top-left/bottom-right pair scores (tl + br) / 2, or -1 when their classes
    differ, their tags are more than ae_threshold apart, or the box is inverted.

    Returns, as float32 on the input's device:
      detections (B, num_dets, 8): x1, y1, x2, y2, score, tl_score, br_score,
        class, best score first (num_dets is clamped to K * K);
      center (B, K, 4 [+ 2]): x, y, class, score of the centre keypoints, and
        with a size map their predicted width and height.
    K is clamped to the heatmap's size C * H * W.

    Class-agnostic corners (1-channel corner heatmaps) decode through the
    same path with every corner of class 0: the centre check
    (test/center_check.py) names their boxes from the centres, or the box
    classifier does (test/kp_detection.py).
    """
    batch, _, height, width = tl_heat.shape
    K = min(K, min(h.shape[1] for h in (tl_heat, br_heat, ct_heat)) * height * width)
    num_dets = min(num_dets, K * K)

    tl_heat = _nms(torch.sigmoid(tl_heat.float()), kernel=kernel)
    br_heat = _nms(torch.sigmoid(br_heat.float()), kernel=kernel)
    ct_heat = _nms(torch.sigmoid(ct_heat.float()), kernel=kernel)

    tl_scores, tl_inds, tl_clses, tl_ys, tl_xs = _topk(tl_heat, K=K)
    br_scores, br_inds, br_clses, br_ys, br_xs = _topk(br_heat, K=K)
    ct_scores, ct_inds, ct_clses, ct_ys, ct_xs = _topk(ct_heat, K=K)

    if tl_regr is not None and br_regr is not None:
        tl_off = _tranpose_and_gather_feat(tl_regr, tl_inds).float()  # (B, K, 2)
        br_off = _tranpose_and_gather_feat(br_regr, br_inds).float()
        tl_xs, tl_ys = tl_xs + tl_off[..., 0], tl_ys + tl_off[..., 1]
        br_xs, br_ys = br_xs + br_off[..., 0], br_ys + br_off[..., 1]
    if ct_regr is not None:
        ct_off = _tranpose_and_gather_feat(ct_regr, ct_inds).float()
        ct_xs, ct_ys = ct_xs + ct_off[..., 0], ct_ys + ct_off[..., 1]

    # every pair: top-left corners along axis 1, bottom-right along axis 2
    shape = (batch, K, K)
    tl_xs, tl_ys = tl_xs.unsqueeze(2).expand(shape), tl_ys.unsqueeze(2).expand(shape)
    br_xs, br_ys = br_xs.unsqueeze(1).expand(shape), br_ys.unsqueeze(1).expand(shape)
    bboxes = torch.stack((tl_xs, tl_ys, br_xs, br_ys), dim=3)  # (B, K, K, 4)

    tl_tags = _tranpose_and_gather_feat(tl_tag, tl_inds).float().reshape(batch, K, 1)
    br_tags = _tranpose_and_gather_feat(br_tag, br_inds).float().reshape(batch, 1, K)
    dists = torch.abs(tl_tags - br_tags)                         # (B, K, K)

    tl_scores = tl_scores.unsqueeze(2).expand(shape)
    br_scores = br_scores.unsqueeze(1).expand(shape)
    scores = (tl_scores + br_scores) / 2                         # (B, K, K)

    tl_clses = tl_clses.unsqueeze(2).expand(shape)
    br_clses = br_clses.unsqueeze(1).expand(shape)
    rejected = ((tl_clses != br_clses) | (dists > ae_threshold)
                | (br_xs < tl_xs) | (br_ys < tl_ys))
    scores = torch.where(rejected, -1.0, scores)

    scores, inds = torch.topk(scores.reshape(batch, -1), num_dets)  # (B, num_dets)
    scores = scores.unsqueeze(2)
    bboxes = _gather_feat(bboxes.reshape(batch, -1, 4), inds)
    clses = _gather_feat(tl_clses.reshape(batch, -1, 1), inds).float()
    tl_scores = _gather_feat(tl_scores.reshape(batch, -1, 1), inds)
    br_scores = _gather_feat(br_scores.reshape(batch, -1, 1), inds)

    detections = torch.cat([bboxes, scores, tl_scores, br_scores, clses], dim=2)
    center = [ct_xs, ct_ys, ct_clses.float(), ct_scores]
    if ct_size is not None:
        sizes = _tranpose_and_gather_feat(ct_size, ct_inds).float().exp()  # (B, K, 2)
        center += [sizes[..., 0], sizes[..., 1]]
    return detections, torch.stack(center, dim=2)

