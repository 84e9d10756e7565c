"""The networks (models/): every config builds its network with the config's
category count; the big networks have exactly the original CenterNet's
parameter counts; small networks run forward and backward with finite
gradients everywhere, in the output shapes of the interface."""

import pytest
import torch

from config import ConfigError, available_configs, load_config
from models import available_networks, build_network
from models.py_utils import AELoss, kp
from models.py_utils.kp_utils import _decode

# networks this big are only counted, never run (a CPU forward takes seconds)
RUNNABLE_PARAMETERS = 20_000_000
ORIGINAL_PARAMETERS_AT_80 = {"CenterNet-52": 104_844_152, "CenterNet-104": 210_062_960}


def count_parameters(net):
    return sum(p.numel() for p in net.parameters())


def build_on_meta(cfg):
    """Build without allocating or initialising weights: counts only."""
    with torch.device("meta"):
        return build_network(cfg)


def small_configs():
    names = []
    for name in available_configs():
        cfg = load_config(name, check_data=False)
        if count_parameters(build_on_meta(cfg)) <= RUNNABLE_PARAMETERS:
            names.append(name)
    return names


def training_inputs(cfg, batch=2, side=127, slots=7, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, side, side, generator=generator)
    out = (side - 1) // 4 + 1
    inds = [torch.randint(0, out * out, (batch, slots), generator=generator) for _ in range(3)]
    return images, inds, out


def head_widths(net):
    return {name: getattr(net, name)[-1][-1].out_channels
            for name in ("tl_heats", "br_heats", "ct_heats", "tl_tags", "br_tags",
                         "tl_regrs", "br_regrs", "ct_regrs")}


@pytest.mark.parametrize("name", available_configs())
def test_every_config_builds_its_network(name):
    cfg = load_config(name, check_data=False)
    net = build_on_meta(cfg)
    categories = cfg.db.categories
    corners = 1 if cfg.db.class_agnostic_corners else categories
    centres = 1 if cfg.db.classes_from == "boxes" else categories
    assert head_widths(net) == {"tl_heats": corners, "br_heats": corners, "ct_heats": centres,
                                "tl_tags": 1, "br_tags": 1, "tl_regrs": 2, "br_regrs": 2, "ct_regrs": 2}
    assert (net.box_classifier is not None) == (cfg.db.classes_from == "boxes")
    assert net.nstack == len(net.kps)


@pytest.mark.parametrize("network", sorted(ORIGINAL_PARAMETERS_AT_80))
def test_parameter_counts_equal_the_original(network):
    cfg = load_config(network, overrides={"db": {"categories": 80, "category_names": None}},
                      check_data=False)
    assert count_parameters(build_on_meta(cfg)) == ORIGINAL_PARAMETERS_AT_80[network]


def test_unknown_network_lists_the_valid_ones():
    cfg = load_config("CenterNet-tiny", overrides={"system": {"network": "CenterNet-999"}},
                      check_data=False)
    with pytest.raises(ConfigError) as error:
        build_network(cfg)
    message = str(error.value)
    assert "CenterNet-999" in message and "system.network" in message
    assert all(name in message for name in available_networks())


@pytest.mark.parametrize("name", small_configs())
def test_small_network_trains_and_predicts(name):
    cfg = load_config(name, check_data=False)
    torch.manual_seed(0)
    net = build_network(cfg)
    images, (tl_inds, br_inds, ct_inds), out = training_inputs(cfg)
    batch, slots, categories = images.shape[0], tl_inds.shape[1], cfg.db.categories
    corners = 1 if cfg.db.class_agnostic_corners else categories

    boxes = cfg.db.classes_from == "boxes"
    box_rois = None
    if boxes:
        box_rois = torch.zeros(batch, cfg.db.boxes_per_image, 4)
        box_rois[:, :2] = torch.tensor([[10.0, 20.0, 90.0, 40.0], [5.0, 60.0, 70.0, 75.0]])
    outs = net(images, tl_inds, br_inds, ct_inds, box_rois)
    assert len(outs) == net.nstack
    centres = 1 if boxes else categories
    expected = {"tl_heat": (batch, corners, out, out), "br_heat": (batch, corners, out, out),
                "ct_heat": (batch, centres, out, out), "tl_tag": (batch, slots, 1),
                "br_tag": (batch, slots, 1), "tl_regr": (batch, slots, 2),
                "br_regr": (batch, slots, 2), "ct_regr": (batch, slots, 2)}
    if cfg.db.center_size:
        expected["ct_size"] = (batch, slots, 2)
    shapes = [{k: tuple(v.shape) for k, v in stack.items()} for stack in outs]
    if boxes:
        assert shapes[-1].pop("box_cls") == (batch, cfg.db.boxes_per_image, categories)
        assert (outs[-1]["box_cls"][:, 2:] == 0).all()  # empty slots
    assert all(s == expected for s in shapes)

    corner_heat = torch.zeros(batch, corners, out, out)
    corner_heat[0, 0, 3, 4] = 1
    centre_heat = torch.zeros(batch, centres, out, out)
    centre_heat[0, 0, 3, 4] = 1
    mask = torch.zeros(batch, slots, dtype=torch.bool)
    mask[:, :3] = True
    targets = {"tl_heatmap": corner_heat, "br_heatmap": corner_heat, "ct_heatmap": centre_heat,
               "tag_mask": mask, "tl_regr": torch.rand(batch, slots, 2),
               "br_regr": torch.rand(batch, slots, 2), "ct_regr": torch.rand(batch, slots, 2),
               "ct_size": torch.rand(batch, slots, 2)}
    if boxes:
        targets["box_classes"] = torch.full((batch, cfg.db.boxes_per_image), -1)
        targets["box_classes"][:, :2] = torch.tensor([3, 5])
    total = AELoss()(outs, targets)["total"]
    total.backward()
    for param_name, param in net.named_parameters():
        assert param.grad is not None, f"{param_name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{param_name} has a non-finite gradient"

    net.eval()
    with torch.no_grad():
        maps = net.predict(images)
    assert tuple(maps) == net.heads
    assert {k: tuple(m.shape) for k, m in maps.items()} == {
        "tl_heat": (batch, corners, out, out), "br_heat": (batch, corners, out, out),
        "ct_heat": (batch, centres, out, out), "tl_tag": (batch, 1, out, out),
        "br_tag": (batch, 1, out, out), "tl_regr": (batch, 2, out, out),
        "br_regr": (batch, 2, out, out), "ct_regr": (batch, 2, out, out),
        **({"ct_size": (batch, 2, out, out)} if cfg.db.center_size else {})}
    detections, center = _decode(**maps, K=cfg.db.top_k, kernel=cfg.db.nms_kernel,
                                 ae_threshold=cfg.db.ae_threshold, num_dets=cfg.db.num_dets)
    assert detections.shape[:2] == (batch, min(cfg.db.num_dets, cfg.db.top_k ** 2))
    assert detections.shape[2] == 8
    assert center.shape == (batch, cfg.db.top_k, 6 if cfg.db.center_size else 4)


@pytest.mark.parametrize("name", small_configs())
def test_heads_follow_the_category_count(name):
    cfg = load_config(name, overrides={"db": {"categories": 3, "category_names": None,
                                              "class_agnostic_corners": False,
                                              "classes_from": "centers"}},
                      check_data=False)
    net = build_network(cfg).eval()
    images, _, out = training_inputs(cfg, batch=1)
    with torch.no_grad():
        maps = net.predict(images)
    assert maps["tl_heat"].shape == maps["br_heat"].shape == maps["ct_heat"].shape == (1, 3, out, out)

    agnostic = load_config(name, overrides={"db": {"class_agnostic_corners": True,
                                                   "classes_from": "centers"}}, check_data=False)
    widths = head_widths(build_on_meta(agnostic))
    assert widths["tl_heats"] == widths["br_heats"] == 1
    assert widths["ct_heats"] == agnostic.db.categories

    named = load_config(name, overrides={"db": {"class_agnostic_corners": True,
                                                "classes_from": "boxes"}}, check_data=False)
    net = build_on_meta(named)
    widths = head_widths(net)
    assert widths["tl_heats"] == widths["br_heats"] == widths["ct_heats"] == 1
    assert net.box_classifier.logits.out_features == named.db.categories


def two_stack_network(categories=3):
    """CenterNet-104's structure (two stacks, the inter-stack merge) at toy sizes."""
    torch.manual_seed(0)
    return kp(n=2, nstack=2, dims=[16, 24, 32], modules=[1, 1, 2], categories=categories,
              cnv_dim=16, pool_dim=8, stem_dim=8)


def test_two_stacks_supervise_both_and_predict_from_the_last():
    net = two_stack_network()
    images = torch.randn(2, 3, 63, 63)
    inds = torch.randint(0, 16 * 16, (2, 4))
    outs = net(images, inds, inds, inds)
    assert len(outs) == 2
    sum(o.float().square().mean() for stack in outs for o in stack.values()).backward()
    assert all(p.grad is not None for p in net.parameters())

    net.eval()
    with torch.no_grad():
        last = net(images, inds, inds, inds)[1]
        maps = net.predict(images)
    for name in ("tl_heat", "br_heat", "ct_heat"):
        assert torch.allclose(maps[name], last[name])
    gathered = maps["tl_tag"].flatten(2).gather(2, inds.unsqueeze(1)).transpose(1, 2)
    assert torch.allclose(gathered, last["tl_tag"])


def test_channels_last_and_odd_sizes_give_the_same_maps():
    net = two_stack_network().eval()
    images = torch.randn(1, 3, 50, 70)  # heatmaps 13 x 18: not multiples of 4
    with torch.no_grad():
        expected = net.predict(images)
        assert expected["tl_heat"].shape == (1, 3, 13, 18)
        net_cl = net.to(memory_format=torch.channels_last)
        got = net_cl.predict(images.contiguous(memory_format=torch.channels_last))
    for name in expected:
        assert torch.allclose(got[name], expected[name], atol=1e-4, rtol=1e-4)


def test_bfloat16_autocast_trains():
    net = two_stack_network()
    images = torch.randn(1, 3, 63, 63)
    inds = torch.randint(0, 16 * 16, (1, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = net(images, inds, inds, inds)
    assert outs[0]["tl_heat"].dtype == torch.bfloat16
    heat = torch.zeros(1, 3, 16, 16)
    heat[0, 1, 2, 2] = 1
    mask = torch.ones(1, 4, dtype=torch.bool)
    targets = {"tl_heatmap": heat, "br_heatmap": heat, "ct_heatmap": heat, "tag_mask": mask,
               "tl_regr": torch.rand(1, 4, 2), "br_regr": torch.rand(1, 4, 2),
               "ct_regr": torch.rand(1, 4, 2)}
    losses = AELoss()(outs, targets)
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in losses.values())
    losses["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_on_cuda_matches_fp32(dtype):
    net = two_stack_network().cuda().eval()
    images = torch.randn(1, 3, 63, 63, device="cuda")
    with torch.no_grad():
        expected = net.predict(images)
        with torch.autocast("cuda", dtype=dtype):
            got = net.predict(images)
    assert got["tl_heat"].dtype == dtype
    for name in expected:
        assert torch.allclose(got[name].float(), expected[name], atol=0.1, rtol=0.05)


def test_head_dim_sets_the_inner_width_of_every_head():
    sizes = dict(n=1, nstack=1, dims=[8, 8], modules=[1, 1], categories=3, cnv_dim=8,
                 pool_dim=4, stem_dim=4, center_size=True)
    default, narrow = kp(**sizes), kp(**sizes, head_dim=5)
    heads = ("tl_heats", "br_heats", "ct_heats", "tl_tags", "br_tags", "tl_regrs", "br_regrs",
             "ct_regrs", "ct_sizes")
    for name in heads:
        assert getattr(default, name)[0][0].conv.out_channels == 8   # dims[0], as in CenterNet
        assert getattr(narrow, name)[0][0].conv.out_channels == 5
        assert getattr(narrow, name)[0][1].in_channels == 5
    maps = narrow.predict(torch.randn(1, 3, 31, 31))
    assert set(maps) == set(narrow.heads) and maps["tl_heat"].shape == (1, 3, 8, 8)


def test_column_pooling_sees_where_an_operator_is_and_global_pooling_does_not():
    """The box classifier's "columns" pooling keeps the order of what it saw
    along the box (the first of several operators names a problem); a global
    max cannot tell a problem's two halves apart when they are swapped."""
    from models.py_utils.box_classifier import BoxClassifier

    torch.manual_seed(0)
    crop = torch.zeros(1, 3, 16, 80)
    crop[:, :, 4:12, 12:28] = torch.randn(1, 3, 8, 16)    # something, then a gap,
    crop[:, :, 4:12, 52:68] = torch.randn(1, 3, 8, 16)    # then something else
    swapped = torch.cat([crop[..., 40:], crop[..., :40]], dim=-1)
    outputs = {}
    for pooling in ("global", "columns"):
        classifier = BoxClassifier(6, (16, 80), pooling=pooling).eval()
        assert classifier.logits.in_features == 64 * (20 if pooling == "columns" else 1)
        with torch.no_grad():
            outputs[pooling] = [classifier.logits(classifier.features(x)) for x in (crop, swapped)]
    torch.testing.assert_close(*outputs["global"])
    assert not torch.allclose(*outputs["columns"], atol=1e-3)
    with pytest.raises(ValueError, match="'global' or 'columns'"):
        BoxClassifier(6, (16, 80), pooling="mean")
    cfg = load_config("CenterNet-tiny", check_data=False, overrides={"db": {"box_pooling": "columns"}})
    assert build_network(cfg).box_classifier.logits.in_features == 64 * cfg.db.box_crop[1] // 4
