"""The networks: one file per network, `models/<Name>.py`, holding its sizes
as data and a `build(**options)` factory over the one shared implementation
in `models/py_utils` (CenterNet, Duan et al., ICCV 2019); `options` are the
head and pooling settings of the config (`network_options`).

    from models import build_network, available_networks
    net = build_network(cfg)   # models/<cfg.network_name>.py, cfg.db.categories wide

The network file is named by the config's `system.network` (or, when that is
null, by the config's own name). `db.categories` sets the width of the
heatmaps; with `db.class_agnostic_corners` the corner heatmaps have a single
channel and the centre heatmap keeps one channel per category; with
`db.classes_from` "boxes" the centre heatmap has one channel too and a
box classifier names the boxes; `db.center_size` adds the centre size head;
`db.pool_window` bounds the pools. A new network
is a new file here with a `build` function: nothing else needs to change.
"""

import importlib
import os

from config import ConfigError, heatmap_channels

MODELS_DIR = os.path.dirname(os.path.abspath(__file__))


def available_networks():
    """Names of the network files under models/ (models/<name>.py)."""
    return sorted(f[:-3] for f in os.listdir(MODELS_DIR)
                  if f.endswith(".py") and not f.startswith("_"))


def build_network(cfg):
    """Build the network `cfg.network_name` for `cfg.db.categories` categories;
    returns a `models.py_utils.kp` (an nn.Module) in training mode on the CPU."""
    name = cfg.network_name
    available = available_networks()
    if name not in available:
        raise ConfigError(
            f"{cfg.path or cfg.name}: system.network: no network {name!r} "
            f"(looked for {os.path.join(MODELS_DIR, name + '.py')}); "
            f"available: {', '.join(available)}")
    # file names hold '-', so the module is imported by name, not by an import statement
    module = importlib.import_module(f"{__name__}.{name}")
    if not callable(getattr(module, "build", None)):
        raise ConfigError(f"{module.__file__}: a network file must define build(**options)")
    return module.build(**network_options(cfg))


def network_options(cfg) -> dict:
    """The keyword arguments of `models.py_utils.kp` that the config sets."""
    db = cfg.db
    boxes = db.classes_from == "boxes"
    corner_channels, center_channels = heatmap_channels(db)
    return {"categories": db.categories,
            "corner_categories": corner_channels,
            "center_categories": center_channels,
            "center_size": db.center_size,
            "box_classifier": ({"crop_size": db.box_crop, "pooling": db.box_pooling}
                               if boxes else None),
            "pool_window": db.pool_window,
            "heat_bias": cfg.system.heat_bias}
