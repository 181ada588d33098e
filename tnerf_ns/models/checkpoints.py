"""Reading T-NeRF checkpoints: safe loading, and the parameter names of checkpoints written by older versions."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, MutableMapping

import torch
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn

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


def load_model_weights(model: nn.Module, path: Path) -> None:
    """Load a T-NeRF checkpoint's weights (head, field, and a saved backbone) into ``model``, e.g. to start scene
    mode from a trained model; the configuration must match."""
    weights = read_model_weights(path)
    own = model.state_dict()
    mismatched = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise RuntimeError(f"{path}: checkpoint does not match this model's configuration ({mismatched[:3]} ...)")
    missing, _ = model.load_state_dict({k: v for k, v in weights.items() if k in own}, strict=False)
    missing = [k for k in missing if not k.startswith("device_indicator")]
    if missing:
        raise RuntimeError(f"{path}: checkpoint lacks {len(missing)} weights of this model ({missing[:3]} ...)")
    CONSOLE.print(f"T-NeRF weights loaded from {path}")
