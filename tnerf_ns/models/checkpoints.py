"""Reading T-NeRF weights: nerfstudio checkpoints, exported heads (a folder or a Hugging Face repo holding
``model.safetensors`` + ``config.json``, see ``scripts/export_head.py``), and the parameter names of checkpoints
written by older versions. Safe loading only."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Dict, MutableMapping, Optional

import torch
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn

if TYPE_CHECKING:
    from tnerf_ns.models.tnerf_model import TNeRFModelConfig

SHIPPED_HEADS: Dict[str, Path] = {
    "vggt-small": Path(__file__).resolve().parents[1] / "weights" / "tnerf-head-vggt-small"
}
"""Heads shipped with the package (``make train-head``), per backbone preset: the start of scene mode."""
HEAD_SETTINGS = ("backbone", "backbone_image_width", "feature_dim", "triplane_resolution", "triplane_channels",
                 "source_rgb_skip", "lift_stride", "refine_layers", "source_projection", "projection_channels",
                 "projection_hidden", "representation", "mlp_width", "mlp_layers", "position_frequencies",
                 "direction_levels", "projection_surface_votes")  # fmt: skip
"""Model settings an exported head's weights depend on (its ``config.json`` records them)."""
LEGACY_HEAD_SETTINGS = {"projection_surface_votes": False}
"""Settings added after heads were first exported: a head whose ``config.json`` lacks one was made with this value."""


class HeadMismatchError(RuntimeError):
    """A head's weights do not fit this run (other backbone weights, or other model settings)."""


def shipped_head(config: "TNeRFModelConfig") -> Optional[Path]:
    """The head shipped for this configuration's backbone preset when it runs on the preset's own weights (None when
    there is none, or ``--pipeline.model.shipped-head False``); when the run's model settings differ from the head's
    it is not used, with a warning naming them."""
    from tnerf_ns.backbone.loading import PRESET_WEIGHTS

    folder = SHIPPED_HEADS.get(config.backbone)
    if not config.shipped_head or folder is None or not (folder / HEAD_WEIGHTS).exists():
        return None
    if config.resolved_backbone_weights != PRESET_WEIGHTS[config.backbone]:
        return None  # other backbone weights: the shipped head was not trained on them
    recorded = recorded_head_settings(folder)
    own = {name: getattr(config, name) for name in recorded}
    differ = {name: (recorded[name], own[name]) for name in own if _setting(own[name]) != recorded[name]}
    if differ:  # the run asked for another model: it starts from scratch, and says why
        listed = ", ".join(f"{k} {v[0]!r} (this run: {v[1]!r})" for k, v in differ.items())
        CONSOLE.print(f"[yellow]{folder}: not used, the shipped head was trained with {listed}; scene mode starts from "
                      "scratch (use those settings to start from it; --pipeline.model.shipped-head False silences "
                      "this)")  # fmt: skip
        return None
    return folder


def recorded_head_settings(folder: Path) -> Dict[str, object]:
    """The model settings an exported head was made with (its ``config.json``), settings added since it was exported
    counted as made without them (``LEGACY_HEAD_SETTINGS``)."""
    recorded = {**LEGACY_HEAD_SETTINGS, **json.loads((folder / "config.json").read_text())["model"]}
    return {name: value for name, value in recorded.items() if name in HEAD_SETTINGS}


def _setting(value):
    return value if isinstance(value, (bool, int, float, str, type(None))) else str(value)


def check_backbone(path: Path, fingerprint: str) -> None:
    """A head records the backbone weights it was trained on (``backbone_fingerprint`` in its config.json): other
    weights give other tokens, and the head's prediction would be meaningless."""
    config = path / "config.json" if path.is_dir() else path.parent / "config.json"
    if not config.exists():
        return
    recorded = json.loads(config.read_text()).get("backbone_fingerprint")
    if recorded and recorded != fingerprint:
        raise HeadMismatchError(
            f"{path}: this head was trained on backbone weights with fingerprint {recorded[:12]}, and this run's "
            f"backbone has {fingerprint[:12]}: load the head with the backbone weights it names in its README.md "
            "(--pipeline.model.backbone-weights), or train a head for these weights"
        )


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
    encoder = getattr(model, "encoder", None)
    if encoder is not None and "backbone" in getattr(encoder, "_hidden", {}):  # a frozen pre-trained backbone
        from tnerf_ns.encoding.cache import weights_fingerprint

        check_backbone(resolve_pretrained(path), weights_fingerprint(encoder.vggt, extra=repr(encoder.vggt.config)))
    own = model.state_dict()
    mismatched = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise RuntimeError(f"{path}: checkpoint does not match this model's configuration ({mismatched[:3]} ...)")
    missing, _ = model.load_state_dict({k: v for k, v in weights.items() if k in own}, strict=False)
    missing = [k for k in missing if not k.startswith("device_indicator")]
    if missing:
        raise RuntimeError(f"{path}: checkpoint lacks {len(missing)} weights of this model ({missing[:3]} ...)")
    CONSOLE.print(f"T-NeRF weights loaded from {path}")
