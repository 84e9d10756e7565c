"""The config loader: every shipped config loads, and every kind of mistake
fails at load time naming the key."""

import json

import pytest

from config import ConfigError, available_configs, load_config


def _write(tmp_path, payload, name="My-Config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return str(path)


def _error(tmp_path, payload, **kwargs):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, payload), check_data=False, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("name", available_configs())
def test_every_shipped_config_loads(name):
    cfg = load_config(name, check_data=False)
    assert cfg.name == name
    assert len(cfg.db.category_names) == cfg.db.categories
    assert all(scale > 0 for scale in cfg.db.test_scales)


def test_the_koushuang_configs_hold_the_pages_settings():
    for name in ("CenterNet-52", "CenterNet-104"):
        cfg = load_config(name, check_data=False)
        assert cfg.system.dataset == "KS"
        assert cfg.db.categories == 6
        assert cfg.db.category_names == ["add", "sub", "mul", "div", "compare", "fill"]
        assert cfg.db.max_tag_len == 256
        assert cfg.db.top_k == 5
        assert cfg.db.vis_threshold == 0.1
        assert cfg.db.input_size == [511, 511]
        assert cfg.db.output_sizes == [[128, 128]]
        assert cfg.system.learning_rate == 0.00025
        assert cfg.system.opt_algo == "adam"
        assert (cfg.system.train_split, cfg.system.val_split, cfg.system.test_split) == \
            ("train", "val", "test")


def test_mscoco_and_multiscale_configs_extend_their_base():
    coco = load_config("CenterNet-52-MSCOCO", check_data=False)
    assert coco.system.dataset == "MSCOCO" and coco.db.categories == 80
    assert coco.network_name == "CenterNet-52"
    multi = load_config("CenterNet-52-multi_scale", check_data=False, name="CenterNet-52")
    assert multi.name == "CenterNet-52"
    assert len(multi.db.test_scales) > 1
    assert multi.db.top_k == load_config("CenterNet-52", check_data=False).db.top_k


def test_unknown_key_names_the_closest_valid_key(tmp_path):
    message = _error(tmp_path, {"db": {"catgories": 6}})
    assert "db.catgories" in message and "'categories'" in message
    message = _error(tmp_path, {"system": {"learning_rat": 0.1}})
    assert "system.learning_rat" in message and "'learning_rate'" in message


def test_key_in_the_wrong_section_says_where_it_belongs(tmp_path):
    assert "belongs in the db section" in _error(tmp_path, {"system": {"top_k": 5}})


def test_retired_original_keys_say_why(tmp_path):
    message = _error(tmp_path, {"system": {"chunk_sizes": [4, 4]}})
    assert "system.chunk_sizes" in message and "torchrun" in message


@pytest.mark.parametrize("section,key,value,reason", [
    ("db", "categories", 0, ">= 1"),
    ("db", "top_k", 0, ">= 1"),
    ("db", "max_tag_len", 0, ">= 1"),
    ("db", "test_scales", [1, 0], "> 0"),
    ("db", "test_scales", [-0.5], "> 0"),
    ("db", "rand_scales", [0.5, 0], "> 0"),
    ("db", "test_scales", [], "empty"),
    ("db", "categories", "six", "integer"),
    ("db", "categories", 6.0, "integer"),
    ("db", "merge_bbox", "yes", "true or false"),
    ("db", "nms_algorithm", "soft_nms", "one of"),
    ("db", "nms_kernel", 2, "odd"),
    ("db", "input_size", [511], "height, width"),
    ("system", "batch_size", 0, ">= 1"),
    ("system", "learning_rate", 0, "> 0"),
    ("system", "opt_algo", "adamw", "one of"),
    ("system", "precision", "fp8", "one of"),
])
def test_impossible_values_name_the_key(tmp_path, section, key, value, reason):
    message = _error(tmp_path, {"base": "CenterNet-52", section: {key: value}})
    assert f"{section}.{key}" in message
    assert reason in message


def test_every_problem_is_reported_at_once(tmp_path):
    message = _error(tmp_path, {"base": "CenterNet-52",
                                "db": {"categories": 0, "top_k": 0, "topk": 1}})
    for key in ("db.categories", "db.top_k", "db.topk"):
        assert key in message


def test_category_names_must_match_categories(tmp_path):
    message = _error(tmp_path, {"base": "CenterNet-52", "db": {"categories": 3}})
    assert "db.category_names" in message and "3" in message


def test_output_size_must_follow_input_size(tmp_path):
    message = _error(tmp_path, {"base": "CenterNet-52", "db": {"input_size": 255}})
    assert "db.output_sizes" in message and "[64, 64]" in message


def test_output_size_is_derived_from_input_size_when_not_given(tmp_path):
    for db in ({"input_size": 255}, {"input_size": [255, 383], "output_sizes": None}):
        cfg = load_config(_write(tmp_path, {"db": db}), check_data=False)
        side = db["input_size"]
        assert cfg.db.output_sizes == [[64, 64] if side == 255 else [64, 96]]
    # a shipped config's own output_sizes is what it would be derived as
    tiny = load_config("CenterNet-tiny", check_data=False)
    derived = load_config("CenterNet-tiny", check_data=False, overrides={"db": {"output_sizes": None}})
    assert tiny.db.output_sizes == derived.db.output_sizes == [[96, 96]]


def test_missing_data_folder_names_the_key(tmp_path):
    path = _write(tmp_path, {"base": "CenterNet-52",
                             "system": {"data_dir": str(tmp_path / "nowhere")}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "system.data_dir" in str(info.value) and "nowhere" in str(info.value)
    (tmp_path / "nowhere").mkdir()
    assert load_config(path).system.data_dir == str(tmp_path / "nowhere")


def test_missing_config_lists_the_available_ones():
    with pytest.raises(ConfigError) as info:
        load_config("CenterNet-53")
    assert "CenterNet-52" in str(info.value)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "Broken.json"
    path.write_text('{\n  "db": {\n    "top_k": 5,\n  }\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), check_data=False)
    assert "Broken.json:4" in str(info.value)


def test_overrides_are_validated_like_the_file():
    cfg = load_config("CenterNet-52", overrides={"db": {"top_k": 20}}, check_data=False)
    assert cfg.db.top_k == 20
    with pytest.raises(ConfigError, match="db.top_k"):
        load_config("CenterNet-52", overrides={"db": {"top_k": -1}}, check_data=False)


def test_a_loaded_config_is_read_only_and_serialisable():
    cfg = load_config("CenterNet-tiny", check_data=False)
    with pytest.raises(AttributeError):
        cfg.db.top_k = 3
    again = json.loads(json.dumps(cfg.to_dict()))
    assert again["db"]["categories"] == cfg.db.categories
    assert again["system"]["network"] == "CenterNet-tiny"


def test_random_scales_come_from_min_max_step():
    cfg = load_config("CenterNet-52", check_data=False)
    assert cfg.db.rand_scales == [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3]


# ----------------------------------------------------------------------------
# what db.vis_threshold once meant, one key per job
# ----------------------------------------------------------------------------

THRESHOLD_KEYS = ("draw_threshold", "confusion_threshold", "empty_page_threshold",
                  "grade_threshold")


@pytest.mark.parametrize("name", available_configs())
def test_every_job_threshold_keeps_the_configs_vis_threshold(name):
    cfg = load_config(name, check_data=False)
    assert all(cfg.db[key] == cfg.db.vis_threshold for key in THRESHOLD_KEYS)


def test_an_old_config_with_vis_threshold_sets_every_job_and_is_named_as_their_setting(tmp_path):
    plain = load_config(_write(tmp_path, {"db": {}}), check_data=False)
    assert all(plain.db[key] == 0.1 for key in THRESHOLD_KEYS)   # the old default
    assert plain.key_setting("db.empty_page_threshold") == "db.empty_page_threshold"
    old = load_config(_write(tmp_path, {"db": {"vis_threshold": 0.25}}), check_data=False)
    assert all(old.db[key] == 0.25 for key in THRESHOLD_KEYS)
    assert old.key_setting("db.empty_page_threshold") == "db.vis_threshold"
    new = load_config(_write(tmp_path, {"db": {"vis_threshold": 0.25, "grade_threshold": 0.6}}),
                      check_data=False)
    assert new.db.grade_threshold == 0.6 and new.db.draw_threshold == 0.25
    assert new.key_setting("db.grade_threshold") == "db.grade_threshold"
    assert "db.draw_threshold" in _error(tmp_path, {"db": {"draw_threshold": 2}})


def test_the_overlap_keys_default_to_the_numbers_they_replace():
    from reader.grading import INSIDE_BETTER, TRUTH_IOU
    from test.boxes import SAME_PLACE_IOU
    cfg = load_config("CenterNet-tiny", check_data=False)
    assert (cfg.db.same_place_iou, cfg.db.grade_inside_share, cfg.db.grade_truth_iou) == \
        (SAME_PLACE_IOU, INSIDE_BETTER, TRUTH_IOU) == (0.5, 0.6, 0.5)


def test_draw_threshold_and_same_place_iou_change_what_a_picture_shows():
    import numpy as np

    from test.visualize import render
    image = np.full((120, 160, 3), 255, np.uint8)
    low = np.array([[20, 60, 150, 110, 0.05, 2]], np.float32)
    for draw_threshold, drawn in ((None, False), (0.01, True)):
        overrides = {"db": {"draw_threshold": draw_threshold, "vis_threshold": 0.1}}
        cfg = load_config("CenterNet-tiny", check_data=False, overrides=overrides)
        assert (render(image, low, cfg) != 255).any() is np.bool_(drawn)
    # two boxes at IoU 1/3: one place at same_place_iou 0.3, two at 0.5
    halves = np.array([[10, 10, 70, 50, 0.9, 0], [40, 10, 100, 50, 0.8, 1]], np.float32)
    for same_place_iou, second_drawn in ((0.5, True), (0.3, False)):
        cfg = load_config("CenterNet-tiny", check_data=False,
                          overrides={"db": {"same_place_iou": same_place_iou}})
        first_alone = render(image, halves[:1], cfg)
        assert (render(image, halves, cfg) != first_alone).any() is np.bool_(second_drawn)


def test_heatmap_channels_are_the_networks_and_the_samplers():
    from config import heatmap_channels
    from models import network_options
    for db, expected in (({"classes_from": "centers", "class_agnostic_corners": False}, (6, 6)),
                         ({"classes_from": "centers", "class_agnostic_corners": True}, (1, 6)),
                         ({"classes_from": "boxes", "class_agnostic_corners": True}, (1, 1))):
        cfg = load_config("CenterNet-tiny", check_data=False, overrides={"db": db})
        assert heatmap_channels(cfg.db) == expected
        options = network_options(cfg)
        assert (options["corner_categories"], options["center_categories"]) == expected


def test_the_papers_numbers_are_the_defaults_and_the_keys_reach_their_code():
    import numpy as np
    import torch

    from models import build_network
    from models.py_utils.kp_utils import _neg_loss
    from test.merge import suppress_class
    plain = load_config("CenterNet-tiny", check_data=False)
    assert (plain.system.focal_alpha, plain.system.focal_beta, plain.system.heat_bias,
            plain.db.nms_sigma) == (2.0, 4.0, -2.19, 0.5)
    changed = load_config("CenterNet-tiny", check_data=False,
                          overrides={"system": {"heat_bias": -4.0}, "db": {"nms_sigma": 0.05}})
    biases = {name: value for name, value in build_network(changed).state_dict().items()
              if "heats" in name and name.endswith(".1.bias")}
    assert biases and all(float(b.flatten()[0]) == -4.0 for b in biases.values())
    # two boxes at IoU 0.5: a narrower gaussian decays the second box further
    boxes = np.array([[0, 0, 9, 9, 0.9, 0.5, 0.5], [0, 0, 9, 19, 0.8, 0.5, 0.5]], np.float32)
    assert suppress_class(boxes, changed)[1, 4] < suppress_class(boxes, plain)[1, 4]
    # beta: the exponent of (1 - y) near an object
    pred, gt = [torch.full((1, 1, 2, 2), 0.3)], torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    assert torch.equal(_neg_loss(pred, gt), _neg_loss(pred, gt, alpha=2, beta=4))
    assert _neg_loss(pred, gt, beta=1.0) > _neg_loss(pred, gt)
