"""Training examples: turn one image and its record into network input and
targets. `sampling_function(cfg)` returns the builder a config names
(`system.sampling_function`)."""

from __future__ import annotations

from .kp_detection import kp_detection

SAMPLING_FUNCTIONS = {"kp_detection": kp_detection}


def sampling_function(cfg):
    name = cfg.system.sampling_function
    try:
        return SAMPLING_FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"system.sampling_function: unknown {name!r}; "
                         f"available: {', '.join(sorted(SAMPLING_FUNCTIONS))}") from None
