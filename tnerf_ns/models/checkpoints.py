"""Reading T-NeRF weights: nerfstudio checkpoints, exported heads (a folder or a Hugging Face repo holding
``model.safetensors`` + ``config.json``, see ``scripts/export_head.py``), and the parameter names of checkpoints
written by older versions. Safe loading only."""

from __future__ import annotations

import zipfile
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


HEAD_WEIGHTS = "model.safetensors"
"""File of an exported head (with ``config.json``, the model settings it needs, and ``README.md``, its card)."""


def resolve_pretrained(source: Path) -> Path:
    """A local checkpoint/head path as is; otherwise a Hugging Face repo id (``org/name``) downloaded (cached,
    offline-aware through ``HF_HUB_OFFLINE``, safetensors only) to its local folder."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    text = str(source)
    if text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise FileNotFoundError(f"{source}: no such checkpoint file or folder (and not a Hugging Face repo id)")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(text, allow_patterns=[HEAD_WEIGHTS, "config.json", "README.md"])
    except Exception as err:  # offline, missing or gated repo: one clear message
        raise FileNotFoundError(
            f"{source}: cannot get this T-NeRF head from the Hugging Face Hub or its cache ({type(err).__name__}); "
            "download the repo elsewhere and pass its local folder to --pipeline.model.pretrained"
        ) from None
    return Path(folder)


def checkpoint_file(path: Path) -> Path:
    """A ``step-*.ckpt`` file, the latest one in a folder, or an exported head's ``model.safetensors``."""
    path = Path(path)
    if path.is_dir() and (path / HEAD_WEIGHTS).is_file():
        return path / HEAD_WEIGHTS
    if path.is_dir():
        ckpts = sorted(path.glob("step-*.ckpt"))
        if not ckpts:
            raise FileNotFoundError(f"{path}: no step-*.ckpt checkpoint found")
        path = ckpts[-1]
    return path


def read_model_weights(path: Path) -> Dict[str, Tensor]:
    """The model's weights of a nerfstudio checkpoint or an exported head (safe loading only), current names."""
    path = checkpoint_file(resolve_pretrained(path))
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            weights = load_file(str(path))
        except Exception as err:
            raise RuntimeError(f"{path}: cannot read T-NeRF head ({err})") from err
        migrate_state_dict(weights)
        return weights
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["pipeline"]
    except Exception as err:
        if path.is_file() and not zipfile.is_zipfile(path):  # not torch.save's format: torch's advice would mislead
            raise RuntimeError(f"{path}: cannot read T-NeRF checkpoint: not a PyTorch checkpoint (expected a "
                               f"step-*.ckpt file, a folder of them, or a folder with {HEAD_WEIGHTS})") from None  # fmt: skip
        raise RuntimeError(f"{path}: cannot read T-NeRF checkpoint ({err})") from err
    prefix = "_model."
    weights = {k[len(prefix) :].removeprefix("module."): v for k, v in state.items() if k.startswith(prefix)}
    migrate_state_dict(weights)
    return weights


def load_model_weights(model: nn.Module, path: Path, missing_ok: bool = False) -> None:
    """Load a T-NeRF checkpoint's weights (head, field, and a saved backbone) into ``model``, e.g. to start scene
    mode from a trained model; the configuration must match. ``missing_ok``: a checkpoint that cannot be found is
    reported and skipped (a finished run's own checkpoint, loaded next, holds every weight)."""
    try:
        weights = read_model_weights(path)
    except FileNotFoundError as err:
        if not missing_ok:
            raise
        CONSOLE.print(f"[yellow]{err}; not needed: the run's own checkpoint holds every weight")
        return
    own = model.state_dict()
    mismatched = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise RuntimeError(f"{path}: checkpoint does not match this model's configuration ({mismatched[:3]} ...)")
    missing, _ = model.load_state_dict({k: v for k, v in weights.items() if k in own}, strict=False)
    missing = [k for k in missing if not k.startswith("device_indicator")]
    if missing:
        raise RuntimeError(f"{path}: checkpoint lacks {len(missing)} weights of this model ({missing[:3]} ...)")
    CONSOLE.print(f"T-NeRF weights loaded from {path}")
