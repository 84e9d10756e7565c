"""The precision setting (system.precision, --precision on train.py, test.py
and demo.py) and channels_last: each precision trains and predicts on the CPU
for the small config, and bf16 agrees with fp32 within a stated tolerance.

Tolerance: bf16 keeps 8 bits of mantissa, so after the network's dozens of
layers the heatmap probabilities (sigmoid of the logits, what decoding ranks)
of the small network stay within 0.05 of fp32's; the test checks exactly that.
"""

import numpy as np
import pytest
import torch

import train
from config import load_config
from models import build_network
from test.cli import load_test_config
from test.kp_detection import decode_scale, prepare_image
from test.timing import StageTimer
from tests.conftest import write_config

BF16_PROBABILITY_TOLERANCE = 0.05


def tiny(precision="fp32", channels_last=False):
    return load_config("CenterNet-tiny", check_data=False,
                       overrides={"system": {"precision": precision,
                                             "channels_last": channels_last},
                                  "db": {"test_flip": True}})


def heat_probabilities(net, cfg, image):
    """Sigmoid heatmaps of the test pipeline's network step (flip batch included)."""
    scaled = prepare_image(image, cfg)[0]
    captured = {}
    original = net.predict

    def capture(images):
        outputs = original(images)
        captured["maps"] = {name: o.float() for name, o in outputs.items()}
        return outputs

    net.predict = capture
    decode_scale(net, scaled.images, cfg, torch.device("cpu"), StageTimer())
    return [torch.sigmoid(captured["maps"][name]) for name in ("tl_heat", "br_heat", "ct_heat")]


def test_bf16_predictions_agree_with_fp32():
    torch.manual_seed(0)
    net = build_network(tiny()).eval()
    image = np.random.default_rng(0).integers(0, 255, (120, 150, 3), dtype=np.uint8)
    reference = heat_probabilities(net, tiny("fp32"), image)
    for cfg in (tiny("bf16"), tiny("fp32", channels_last=True)):
        candidate = net.to(memory_format=torch.channels_last) if cfg.system.channels_last else net
        got = heat_probabilities(candidate, cfg, image)
        tolerance = BF16_PROBABILITY_TOLERANCE if cfg.system.precision == "bf16" else 1e-4
        for a, b in zip(got, reference):
            assert (a - b).abs().max().item() < tolerance


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_each_precision_trains_through_train_py(tmp_path, tiny_ks_dir, precision):
    config = write_config(tmp_path, tiny_ks_dir, system={"max_iter": 1, "val_iter": 0},
                          db={"input_size": 63, "output_sizes": [[16, 16]]})
    assert train.main([config, "--device", "cpu", "--workers", "0",
                       "--precision", precision]) == 0
    snapshot = torch.load(tmp_path / "cache" / "nnet" / "tiny" / "tiny_1.pkl", weights_only=True)
    assert snapshot["config"]["system"]["precision"] == precision
    assert all(torch.isfinite(t).all() for t in snapshot["network"].values()
               if t.is_floating_point())


def test_fp16_needs_cuda_and_amp_contradiction_is_refused(tmp_path, tiny_ks_dir, capsys):
    config = write_config(tmp_path, tiny_ks_dir, system={"max_iter": 1})
    if not torch.cuda.is_available():
        assert train.main([config, "--device", "cpu", "--precision", "fp16"]) == 2
        assert "fp16" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.parse_args([config, "--amp", "--precision", "bf16"])


def test_test_and_demo_take_the_precision_as_a_config_override():
    cfg = load_test_config("CenterNet-tiny", None, check_data=False, precision="bf16")
    assert cfg.system.precision == "bf16"
    # every shipped config takes "auto" (README, Device and precision)
    assert load_test_config("CenterNet-52", None, check_data=False).system.precision == "auto"
    assert load_test_config("CenterNet-tiny", None, check_data=False).system.precision == "auto"
