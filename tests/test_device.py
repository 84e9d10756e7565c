"""The device and precision choice (nnet/device.py): "auto" picks bf16 where
the hardware computes it natively and fp32 elsewhere (the detection is mocked
both ways, for the CPU and for CUDA), train.py, test.py and demo.py print the
choice and why first, and fp16 off CUDA is refused the same way everywhere:
by the entry points at argument time (exit status 2, naming the flag or the
key), by the network factory and by the test pipeline."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import torch

import nnet.device as device_module
from config import SCHEMA, load_config
from nnet.device import (
    PRECISION_SETTINGS,
    DeviceError,
    autocast,
    choose_device,
    choose_precision,
    native_bf16,
    precision_for,
)


@pytest.fixture
def cpu_bf16(monkeypatch):
    """cpu_bf16(features, onednn=True): make the CPU report these native bf16
    instruction sets (and oneDNN its bf16 support) for the rest of the test."""
    def mock(features, onednn=True):
        monkeypatch.setattr(device_module, "cpu_bf16_features", lambda: list(features))
        monkeypatch.setattr(device_module, "_onednn_bf16", lambda: onednn)
        device_module._cpu_native_bf16.cache_clear()
    yield mock
    device_module._cpu_native_bf16.cache_clear()


@pytest.fixture
def cuda_gpu(monkeypatch):
    """cuda_gpu(name, capability, bf16): a mocked current CUDA device."""
    def mock(name, capability, bf16):
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: name)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                            lambda including_emulation=True: bf16)
        device_module._cuda_native_bf16.cache_clear()
    yield mock
    device_module._cuda_native_bf16.cache_clear()


def test_auto_is_bf16_on_a_cpu_with_native_bf16(cpu_bf16):
    cpu_bf16(["AMX"])
    choice = choose_precision("auto", "cpu")
    assert choice.name == "bf16"
    assert str(choice) == "precision: bf16 (auto: the CPU computes bf16 natively: AMX)"
    cpu_bf16(["AVX-512 BF16"])
    assert choose_precision("auto", "cpu").name == "bf16"


def test_auto_is_fp32_where_bf16_would_be_emulated(cpu_bf16):
    cpu_bf16([])  # an AVX2 machine
    choice = choose_precision("auto", "cpu")
    assert choice.name == "fp32"
    assert "no native bf16" in choice.reason and "emulated" in choice.reason
    cpu_bf16(["AMX"], onednn=False)  # the instructions, but a PyTorch that cannot use them
    choice = choose_precision("auto", "cpu")
    assert choice.name == "fp32" and "oneDNN" in choice.reason


def test_auto_on_cuda_follows_the_gpus_bf16_support(cuda_gpu):
    cuda_gpu("NVIDIA H100", (9, 0), bf16=True)
    choice = choose_precision("auto", torch.device("cuda", 0))
    assert choice.name == "bf16" and "NVIDIA H100" in choice.reason and "natively" in choice.reason
    cuda_gpu("Tesla V100", (7, 0), bf16=False)
    choice = choose_precision("auto", torch.device("cuda", 0))
    assert choice.name == "fp32" and "Tesla V100" in choice.reason and "7.0" in choice.reason


def test_the_cpu_detection_reads_what_pytorch_reports():
    """No mock: the real query answers, and agrees with torch.cpu's capabilities."""
    native, why = native_bf16("cpu")
    capabilities = torch.cpu.get_capabilities()
    if capabilities.get("architecture") not in ("x86_64", "x86"):
        pytest.skip("the x86 flags are checked here")
    has = bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    assert native == (has and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert ("natively" in why) == native


def test_a_forced_precision_is_kept_and_says_where_it_came_from(cpu_bf16):
    cpu_bf16([])
    for name in ("fp32", "bf16"):
        assert choose_precision(name, "cpu", "--precision") == \
            device_module.Precision(name, "set by --precision")
    cfg = load_config("CenterNet-52", check_data=False)
    assert cfg.system.precision == "auto"  # the default of the paper's configs
    assert precision_for(cfg, "cpu").name == "fp32"


def test_every_setting_is_a_valid_config_value():
    assert SCHEMA["system"]["precision"].default == "auto"
    for setting in PRECISION_SETTINGS:
        assert SCHEMA["system"]["precision"].check(setting) == setting
    for name in ("CenterNet-52", "CenterNet-104", "CenterNet-tiny"):
        with open(os.path.join("config", f"{name}.json"), encoding="utf-8") as f:
            assert json.load(f)["system"]["precision"] == "auto", name


def test_fp16_on_a_cpu_is_refused_naming_the_flag_or_key(tmp_path):
    path = tmp_path / "Fp16.json"
    path.write_text(json.dumps({"base": "CenterNet-tiny", "system": {"precision": "fp16"}}))
    in_file = load_config(str(path), check_data=False)
    on_command_line = load_config("CenterNet-tiny", check_data=False,
                                  overrides={"system": {"precision": "fp16"}})
    for cfg, flag, named in ((in_file, None, f"{path}: system.precision fp16"),
                             (on_command_line, None, "--set system.precision fp16"),
                             (on_command_line, "--precision", "--precision fp16"),
                             (on_command_line, "--amp", "--amp fp16")):
        with pytest.raises(DeviceError) as error:
            precision_for(cfg, "cpu", flag)
        message = str(error.value)
        assert message.startswith(named) and "runs only on a CUDA device" in message
        assert "use --precision auto, bf16 or fp32" in message


def test_the_test_pipeline_refuses_fp16_on_a_cpu_as_training_does():
    """One behaviour: test/kp_detection used to run fp32 silently here."""
    from test.kp_detection import decode_scale
    from test.timing import StageTimer
    cfg = load_config("CenterNet-tiny", check_data=False,
                      overrides={"system": {"precision": "fp16"}})
    with pytest.raises(DeviceError, match="fp16"):
        decode_scale(None, torch.zeros(1, 3, 63, 63), cfg, torch.device("cpu"), StageTimer())


def test_autocast_of_each_setting(cpu_bf16):
    cpu_bf16(["AMX"])
    with autocast("auto", "cpu"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    cpu_bf16([])
    with autocast("auto", "cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_choose_device_names_the_flag():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="--device: not a device: 'tpu:9'"):
        choose_device("tpu:9")
    with pytest.raises(DeviceError, match="--device meta"):
        choose_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="--device cuda: PyTorch sees no CUDA device"):
            choose_device("cuda")


# --- the entry points ------------------------------------------------------

@pytest.fixture
def small_config(tmp_path):
    """A CenterNet-tiny config over an empty data folder and one image: every
    entry point gets past the precision and then stops (exit status 2) on the
    missing data or snapshot, quickly."""
    data = tmp_path / "data"
    data.mkdir()
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "page.png"), np.full((40, 50, 3), 255, np.uint8))
    path = tmp_path / "Small.json"
    path.write_text(json.dumps({
        "base": "CenterNet-tiny",
        "system": {"data_dir": str(data), "cache_dir": str(tmp_path / "cache"),
                   "result_dir": str(tmp_path / "results"), "workers": 0, "precision": "auto"},
        "db": {"input_size": 63, "output_sizes": [[16, 16]], "border": 16}}), encoding="utf-8")
    return str(path), str(images)


def entry_arguments(script, images, tmp_path):
    return {"train.py": ["--iter", "5"], "test.py": ["--testiter", "5"],
            "demo.py": ["--testiter", "5", "--images", images, "--out", tmp_path / "out"]}[script]


@pytest.mark.parametrize("script", ["train.py", "test.py", "demo.py"])
def test_entry_points_print_the_choice_first(script, small_config, tmp_path, entry_point,
                                             cpu_bf16, capsys):
    config, images = small_config
    for features, expected in ((["AMX"], "precision: bf16 (auto: the CPU computes bf16 "
                                         "natively: AMX)"),
                               ([], "precision: fp32 (auto: the CPU has no native bf16")):
        cpu_bf16(features)
        code = entry_point(script, config, "--device", "cpu",
                           *entry_arguments(script, images, tmp_path))
        assert code == 2  # no data or snapshot: it stops after the choice
        assert capsys.readouterr().out.splitlines()[0].startswith(expected), script
    assert entry_point(script, config, "--device", "cpu", "--precision", "fp32",
                       *entry_arguments(script, images, tmp_path)) == 2
    assert capsys.readouterr().out.splitlines()[0] == "precision: fp32 (set by --precision)"


@pytest.mark.parametrize("script", ["train.py", "test.py", "demo.py"])
def test_entry_points_refuse_fp16_on_a_cpu_at_argument_time(script, small_config, tmp_path,
                                                            entry_point, capsys):
    config, images = small_config
    assert entry_point(script, config, "--device", "cpu", "--precision", "fp16",
                       *entry_arguments(script, images, tmp_path)) == 2
    captured = capsys.readouterr()
    assert f"{script}: --precision fp16: fp16" in captured.err and "CUDA" in captured.err
    assert "precision:" not in captured.out  # refused before anything ran
