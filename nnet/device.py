"""The one place that chooses the device and the precision of the network, for
train.py, test.py, demo.py, the network factory, the test pipeline and the
benchmarks.

    device = choose_device(args.device)                     # None: cuda when available
    precision = precision_for(cfg, device, "--precision")   # Precision("bf16", "auto: ...")
    print(precision)                                        # precision: bf16 (auto: ...)
    with autocast(precision.name, device): net.predict(images)

Device: `None` is CUDA when PyTorch sees a GPU, else the CPU; "cpu", "cuda"
or "cuda:N" is checked against what PyTorch sees. A CUDA device becomes the
process's current device (under torchrun, the LOCAL_RANK'th GPU).

Precision (system.precision, --precision, train.py --amp = fp16):
- fp32: no autocast.
- bf16: autocast to bfloat16 (CPU and CUDA), no grad scaler.
- fp16: autocast to float16, with a grad scaler when training; CUDA only.
  On a CPU it is refused when the run starts (DeviceError, exit status 2),
  by train.py, test.py and demo.py alike, naming the flag or the key: the
  CPU's float16 kernels are few and slow, and running fp32 instead without
  saying so would report figures for a precision that never ran.
- auto (the default): bf16 where the hardware computes bf16 natively, fp32
  elsewhere. On a CPU, natively means AVX-512 BF16 or AMX-BF16 (x86) or the
  BF16 instructions of ARMv8.6 (FEAT_BF16), as PyTorch's cpuinfo reports
  them (torch.cpu.get_capabilities), together with oneDNN's bf16 support
  (torch.ops.mkldnn._is_mkldnn_bf16_supported): without them oneDNN
  emulates bf16 and it runs 6-11x slower than fp32 (BENCHMARKS.md,
  precision-cpu). On CUDA: torch.cuda.is_bf16_supported without emulation
  (compute capability 8.0 and later).

The heads' outputs are turned back to float32 before the loss and the
decoding (models/py_utils/kp.py, test/kp_detection.py), whatever the
precision.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache

import torch

from config import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_SETTINGS = ("auto",) + PRECISIONS  # what system.precision and --precision accept
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(ConfigError):
    """A device or precision this machine cannot run; the message names the flag or key."""


# --------------------------------------------------------------------------
# device
# --------------------------------------------------------------------------

def choose_device(requested: str | None = None, local_rank: int = 0,
                  fixed_input_size: bool = False) -> torch.device:
    """The device of --device `requested` (None: cuda when available, else cpu).

    A CUDA device without an index is the `local_rank`'th GPU (torchrun's
    LOCAL_RANK); it becomes the current device. `fixed_input_size` (training)
    lets cuDNN time its kernels once for the one input size; test inputs
    change size with each page, so there it would re-time every page.
    """
    if requested is None:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError, TypeError):
        raise DeviceError(f"--device: not a device: {requested!r} (cpu, cuda or cuda:N)") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise DeviceError(f"--device {requested}: this program runs on cpu or cuda[:N], "
                          f"not {device.type}")
    if not torch.cuda.is_available():
        raise DeviceError(f"--device {requested}: PyTorch sees no CUDA device here; "
                          f"use --device cpu")
    count = torch.cuda.device_count()
    index = local_rank if device.index is None else device.index
    if index >= count:
        raise DeviceError(f"--device {requested}: PyTorch sees {count} CUDA device(s) here, "
                          f"cuda:0 to cuda:{count - 1}")
    device = torch.device("cuda", index)
    torch.cuda.set_device(device)
    if fixed_input_size:
        torch.backends.cudnn.benchmark = True
    return device


# --------------------------------------------------------------------------
# precision
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Precision:
    """A precision the network runs in ("fp32", "bf16" or "fp16") and why it was chosen."""
    name: str
    reason: str

    def __str__(self) -> str:
        return f"precision: {self.name} ({self.reason})"


def choose_precision(setting: str, device, source: str = "system.precision") -> Precision:
    """Resolve a precision setting ("auto", "fp32", "bf16", "fp16") for `device`.

    `source` names where the setting came from ("--precision", "--amp",
    "config/X.json: system.precision"), for the reason and for the error that
    refuses fp16 off CUDA.
    """
    device = torch.device(device)
    if setting == "auto":
        native, why = native_bf16(device)
        return Precision("bf16" if native else "fp32", f"auto: {why}")
    if setting not in PRECISIONS:
        raise DeviceError(f"{source}: {setting!r} is not a precision; use one of "
                          f"{', '.join(PRECISION_SETTINGS)}")
    if setting == "fp16" and device.type != "cuda":
        where = "the CPU" if device.type == "cpu" else device.type
        raise DeviceError(
            f"{source} fp16: fp16 (float16 autocast with a grad scaler) runs only on a CUDA "
            f"device, and this run is on {where}; use --precision auto, bf16 or fp32, or set "
            f"system.precision to one of them in the config")
    return Precision(setting, f"set by {source}")


def precision_for(cfg, device, flag: str | None = None) -> Precision:
    """choose_precision for cfg.system.precision; `flag` is the entry point's
    option that set it ("--precision", "--amp"), None when the config did."""
    if flag:
        source = flag
    elif "system.precision" in cfg.overrides:
        source = "--set system.precision"
    else:
        source = f"{cfg.path or cfg.name}: system.precision"
    return choose_precision(cfg.system.precision, device, source)


def autocast(precision: str, device):
    """The autocast context of a precision ("auto" is resolved for `device`);
    fp32 is no autocast at all."""
    device = torch.device(device)
    name = choose_precision(precision, device).name
    if name == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[name])


def native_bf16(device) -> tuple[bool, str]:
    """(whether `device` computes bf16 natively, why), for precision "auto"."""
    device = torch.device(device)
    if device.type == "cuda":
        return _cuda_native_bf16(torch.cuda.current_device() if device.index is None
                                 else device.index)
    if device.type == "cpu":
        return _cpu_native_bf16()
    return False, f"no bf16 check for {device.type} devices, so fp32"


@lru_cache(maxsize=None)
def _cuda_native_bf16(index: int) -> tuple[bool, str]:
    name = torch.cuda.get_device_name(index)
    major, minor = torch.cuda.get_device_capability(index)
    # of the current device, which choose_device made this one
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    if native:
        return True, f"the GPU {name} (compute capability {major}.{minor}) computes bf16 natively"
    return False, (f"the GPU {name} (compute capability {major}.{minor}) has no native bf16; "
                   f"fp16 (--precision fp16) is its fast precision")


# cpuinfo's names (torch.cpu.get_capabilities) of the instructions that
# compute bf16 natively, and how to call them
_CPU_BF16_FEATURES = {"amx_bf16": "AMX", "avx512_bf16": "AVX-512 BF16", "bf16": "ARM BF16",
                      "sve_bf16": "SVE BF16"}


def cpu_bf16_features() -> list[str]:
    """The CPU's native bf16 instruction sets as PyTorch reports them (may be empty)."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        capabilities = get_capabilities()
        return [label for key, label in _CPU_BF16_FEATURES.items() if capabilities.get(key)]
    # PyTorch before get_capabilities: its private x86 checks
    found = []
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        found.append("AMX")
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        found.append("AVX-512 BF16")
    return found


def _onednn_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@lru_cache(maxsize=None)
def _cpu_native_bf16() -> tuple[bool, str]:
    features = cpu_bf16_features()
    if not features:
        return False, ("the CPU has no native bf16 (neither AVX-512 BF16 nor AMX), so bf16 "
                       "would be emulated and slower than fp32")
    if not _onednn_bf16():
        return False, (f"the CPU has {', '.join(features)} but this PyTorch's oneDNN does not "
                       f"run bf16 on it")
    return True, f"the CPU computes bf16 natively: {', '.join(features)}"
