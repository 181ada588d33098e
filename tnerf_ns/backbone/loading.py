"""Building VGGT models and loading checkpoints (Hugging Face Hub, local files and folders), safely and strictly."""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
from torch import Tensor, nn

from tnerf_ns.backbone.config import VGGTConfig, get_vggt_config
from tnerf_ns.backbone.layers import LayerScale
from tnerf_ns.backbone.vggt import TRACK_HEAD_PREFIX, VGGT

LOGGER = logging.getLogger(__name__)

DEFAULT_REPO = "facebook/VGGT-1B"
"""Hugging Face repository of the official pre-trained weights (non-commercial licence)."""
VGGT_SMALL_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "vggt-small-synthetic.safetensors"
"""vggt-small pre-trained here with VGGT's objectives on generated scenes (scripts/pretrain_vggt.py; fp16, shipped
with the package): a small stand-in, not VGGT-1B."""
PRESET_WEIGHTS: Dict[str, Optional[str]] = {"vggt-1b": DEFAULT_REPO, "vggt-small": str(VGGT_SMALL_WEIGHTS)}
"""Default weights of each preset (None: random init)."""
PRESET_INPUT_WIDTH: Dict[str, int] = {"vggt-1b": 518, "vggt-small": 140}
"""Default input width of each preset (VGGT-1B was trained at 518 px)."""
WEIGHT_FILENAMES = ("model.safetensors", "model.pt", "pytorch_model.bin")
"""Files looked for in a repository or folder, in order of preference (safetensors first)."""


class VGGTLoadError(RuntimeError):
    """A checkpoint could not be found, read or matched to the architecture."""


def init_weights(model: nn.Module, std: float = 0.02) -> None:
    """Random initialisation for training from scratch (ViT-style truncated normal, zero biases)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, LayerScale):
            pass  # keeps its configured init value
    for name, param in model.named_parameters():
        if name.endswith(("cls_token", "register_tokens", "pos_embed", "camera_token", "register_token")):
            nn.init.trunc_normal_(param, std=std)
        elif name.endswith(("mask_token", "empty_pose_tokens")):
            nn.init.zeros_(param)


def build_vggt(config: Union[str, VGGTConfig] = "vggt-small", seed: Optional[int] = 0, frozen: bool = True) -> VGGT:
    """A randomly initialised VGGT from a preset name or a config; downloads nothing.

    Args:
        config: ``"vggt-1b"``, ``"vggt-small"`` or a :class:`VGGTConfig`.
        seed: seed of the initialisation (None: use the global generator).
        frozen: eval mode and ``requires_grad=False``.
    """
    cfg = get_vggt_config(config)
    generator_state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    try:
        model = VGGT(cfg)
        init_weights(model)
    finally:
        if seed is not None:
            torch.random.set_rng_state(generator_state)
    return model.freeze() if frozen else model


def _unwrap_state_dict(obj: object, path: Path) -> Dict[str, Tensor]:
    """Accept a plain state dict or the common {"model": ...} / {"state_dict": ...} wrappers."""
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise VGGTLoadError(f"{path}: not a state dict of tensors (got {type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def read_state_dict(path: Union[str, Path]) -> Dict[str, Tensor]:
    """Read a checkpoint file without executing code: safetensors, or ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise VGGTLoadError(f"{path}: checkpoint file not found")
    if path.stat().st_size == 0:
        raise VGGTLoadError(f"{path}: checkpoint file is empty")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise VGGTLoadError(f"{path}: corrupt or truncated safetensors file ({err})") from err
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        raise VGGTLoadError(
            f"{path}: refused to load; the file is not a plain tensor checkpoint (it would need arbitrary code to "
            f"unpickle, which is never executed here). Convert it to safetensors. Details: {err}"
        ) from err
    except Exception as err:  # torch raises many types on damaged files (RuntimeError, EOFError, IndexError ...)
        raise VGGTLoadError(f"{path}: corrupt or truncated checkpoint ({err})") from err
    return _unwrap_state_dict(obj, path)


def _first(keys: List[str], n: int = 5) -> str:
    more = f" ... (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def check_state_dict(model: nn.Module, state: Dict[str, Tensor], path: Union[str, Path]) -> Dict[str, Tensor]:
    """Drop the track head, then require exactly the model's keys and shapes; errors name the offending keys."""
    dropped = [k for k in state if k.startswith(TRACK_HEAD_PREFIX)]
    if dropped:
        LOGGER.info("%s: dropping %d track_head.* tensors (the track head is not used)", path, len(dropped))
        state = {k: v for k, v in state.items() if not k.startswith(TRACK_HEAD_PREFIX)}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_first(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_first(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatches (checkpoint != model): {_first(wrong, 3)}")
    if problems:
        cfg = getattr(model, "config", None)
        name = f" config {cfg.name!r}" if cfg is not None else ""
        raise VGGTLoadError(f"{path}: checkpoint does not match the{name} architecture; " + "; ".join(problems))
    return state


def resolve_checkpoint(
    source: Union[str, Path],
    revision: Optional[str] = None,
    cache_dir: Optional[Union[str, Path]] = None,
    local_files_only: Optional[bool] = None,
) -> Path:
    """Turn a local file, a local folder or a Hugging Face repo id into the path of one weights file."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for name in WEIGHT_FILENAMES:
            if (path / name).is_file():
                return path / name
        found = sorted(p.name for p in path.iterdir() if p.suffix in {".safetensors", ".pt", ".pth", ".bin"})
        if len(found) == 1:
            return path / found[0]
        raise VGGTLoadError(f"{path}: no weights file found (looked for {', '.join(WEIGHT_FILENAMES)}; found {found})")
    if str(source).startswith((".", "/", "~")) or str(source).count("/") != 1:
        raise VGGTLoadError(f"{source}: no such checkpoint file or folder (and not a Hugging Face repo id 'org/name')")

    from huggingface_hub import hf_hub_download

    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}
    errors = []
    for name in WEIGHT_FILENAMES[:2]:
        try:
            return Path(
                hf_hub_download(
                    str(source), name, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
                )
            )
        except Exception as err:  # hub errors vary by version: offline, missing file, gated repo, network
            errors.append(f"{name}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            if type(err).__name__ == "LocalEntryNotFoundError":  # offline / no network: another name cannot help
                break
    raise VGGTLoadError(
        f"Could not get the weights of {source!r} from the Hugging Face Hub or its local cache "
        f"({'; '.join(errors)}). If this machine is offline, download 'model.safetensors' elsewhere and pass its "
        "local path (or folder) as the source (ns-train: --pipeline.model.backbone-weights PATH), or use the small "
        "config 'vggt-small' (build_vggt('vggt-small'); ns-train: --pipeline.model.backbone vggt-small)."
    )


def load_vggt(
    source: Union[str, Path] = DEFAULT_REPO,
    config: Union[str, VGGTConfig] = "vggt-1b",
    device: Union[str, torch.device] = "cpu",
    revision: Optional[str] = None,
    cache_dir: Optional[Union[str, Path]] = None,
    local_files_only: Optional[bool] = None,
    frozen: bool = True,
) -> VGGT:
    """Build a VGGT and load weights strictly (the track head, if present, is dropped with a log line).

    Args:
        source: Hugging Face repo id (default ``facebook/VGGT-1B``), a weights file or a folder holding one.
        config: preset name or config of the architecture the weights belong to.
        device: where the model goes.
        revision: repository revision (Hub sources only).
        cache_dir: Hugging Face cache folder (default: the hub's own).
        local_files_only: never touch the network (default: ``HF_HUB_OFFLINE``).
        frozen: eval mode and no gradients.
    """
    cfg = get_vggt_config(config)
    path = resolve_checkpoint(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    state = read_state_dict(path)
    # Build without random init (the weights are about to be replaced), then take the checkpoint tensors as is.
    with torch.device("meta"):
        model = VGGT(cfg)
    state = check_state_dict(model, state, path)
    model.load_state_dict(state, strict=True, assign=True)
    model.aggregator.patch_embed.mask_token.requires_grad_(False)
    model = model.to(device=device, dtype=torch.float32)
    LOGGER.info("loaded VGGT %s from %s", cfg.name, path)
    return model.freeze() if frozen else model
