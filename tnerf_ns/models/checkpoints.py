"""Reading T-NeRF checkpoints: safe loading, and the parameter names of checkpoints written by older versions."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, MutableMapping

import torch
from torch import Tensor

LEGACY_ENCODER_PREFIXES = ("backbone.", "latent_head.", "lifter.")
"""Model-level names of the encoder's parts before they moved into ``encoder.`` (T-NeRF 0.1, before the encoder
module)."""


def migrate_state_dict(state: MutableMapping[str, Tensor], prefix: str = "") -> None:
    """Rename, in place, parameters of a model saved before the encoder module (``{prefix}latent_head.x`` ->
    ``{prefix}encoder.latent_head.x``); current names are left alone."""
    for key in list(state):
        rest = key[len(prefix) :] if key.startswith(prefix) else None
        if rest is not None and rest.startswith(LEGACY_ENCODER_PREFIXES):
            state[f"{prefix}encoder.{rest}"] = state.pop(key)


def checkpoint_file(path: Path) -> Path:
    """A ``step-*.ckpt`` file, or the latest one in a folder."""
    path = Path(path)
    if path.is_dir():
        ckpts = sorted(path.glob("step-*.ckpt"))
        if not ckpts:
            raise FileNotFoundError(f"{path}: no step-*.ckpt checkpoint found")
        path = ckpts[-1]
    return path


def read_model_weights(path: Path) -> Dict[str, Tensor]:
    """The model's weights of a nerfstudio checkpoint (safe loading only), with current parameter names."""
    path = checkpoint_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["pipeline"]
    except Exception as err:
        raise RuntimeError(f"{path}: cannot read T-NeRF checkpoint ({err})") from err
    prefix = "_model."
    weights = {k[len(prefix) :].removeprefix("module."): v for k, v in state.items() if k.startswith(prefix)}
    migrate_state_dict(weights)
    return weights
