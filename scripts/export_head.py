#!/usr/bin/env python
"""Export a trained T-NeRF head as a folder ready to share on the Hugging Face Hub.

    python scripts/export_head.py --load-config outputs/.../config.yml --out my-tnerf-head
    huggingface-cli upload my-org/my-tnerf-head my-tnerf-head      # then, anywhere:
    ns-train tnerf --pipeline.model.pretrained my-org/my-tnerf-head ... blender-data --data my_scene

The folder holds ``model.safetensors`` (the model's weights: head, lifting, field, and the backbone when it was
trained with them; pre-trained frozen backbone weights are not included, they are named in the config),
``config.json`` (the model settings a run must use with these weights) and ``README.md`` (a model card).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import tyro
import yaml
from rich.console import Console

from tnerf_ns.backbone.loading import DEFAULT_REPO  # noqa: E402
from tnerf_ns.models.checkpoints import HEAD_SETTINGS  # noqa: E402

CONSOLE = Console(width=120)
REPO = Path(__file__).resolve().parents[1]
SETTINGS = ("backbone_weights", *HEAD_SETTINGS)
"""Model settings that must match the weights (passed as --pipeline.model.<name> flags)."""


def backbone_record(model_cfg) -> dict:
    """The frozen pre-trained backbone a head was trained on: its source, the file's sha256 and the fingerprint of
    its weights (what loading checks). Empty for a backbone trained with the head (saved in the head itself)."""
    import hashlib

    from tnerf_ns.backbone import load_vggt
    from tnerf_ns.encoding.cache import weights_fingerprint

    weights = model_cfg.resolved_backbone_weights
    if not weights:
        return {}
    vggt = load_vggt(weights, model_cfg.backbone)
    shown = Path(weights).resolve().relative_to(REPO) if Path(weights).resolve().is_relative_to(REPO) else weights
    record = {
        "backbone_weights": str(shown),
        "backbone_fingerprint": weights_fingerprint(vggt, extra=repr(vggt.config)),
    }
    path = Path(weights)
    if path.is_file():
        record["backbone_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return record


@dataclass
class ExportHead:
    """Write model.safetensors + config.json + README.md for a trained run."""

    load_config: Path
    """config.yml of the trained run."""
    out: Path
    """Folder to write (created)."""

    def main(self) -> Path:
        import torch
        from safetensors.torch import save_file

        from tnerf_ns.models.checkpoints import read_model_weights

        config = yaml.load(self.load_config.read_text(), Loader=yaml.Loader)
        model_cfg = config.pipeline.model
        weights = read_model_weights(self.load_config.parent / "nerfstudio_models")
        weights = {k: v.contiguous() for k, v in weights.items() if isinstance(v, torch.Tensor) and v.numel()}
        self.out.mkdir(parents=True, exist_ok=True)
        save_file(weights, str(self.out / "model.safetensors"), metadata={"format": "tnerf-head-1"})
        settings = {name: getattr(model_cfg, name) for name in SETTINGS if hasattr(model_cfg, name)}
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()}
        if settings.get("backbone_weights") == DEFAULT_REPO:  # the preset's own weights: no flag needed
            del settings["backbone_weights"]
        method = config.method_name
        record = {"method": method, "model": settings, **backbone_record(model_cfg)}
        (self.out / "config.json").write_text(json.dumps(record, indent=2))
        data = config.pipeline.datamanager.data or config.pipeline.datamanager.dataparser.data
        flags = " ".join(f"--pipeline.model.{k.replace('_', '-')} {v}" for k, v in settings.items() if v is not None)
        n = sum(v.numel() for v in weights.values())
        card = [
            "---", "library_name: nerfstudio", "tags: [nerfstudio, tnerf, nerf, feed-forward]", "---", "",
            f"# T-NeRF head ({method})", "",
            f"Weights of a `{method}` model trained with the `tnerf_ns` nerfstudio plugin: {n:,} parameters "
            f"(`model.safetensors`), model settings in `config.json`.", "",
            "Use (the settings must match):", "", "```bash",
            f"ns-train {method} --pipeline.model.pretrained <this repo or folder> {flags} \\",
            "    --max-num-iterations 0 blender-data --data my_scene", "```", "",
            f"Trained from `{self.load_config}` on `{data}`.",
        ]  # fmt: skip
        if record.get("backbone_fingerprint"):
            card += ["", f"Backbone weights: `{record['backbone_weights']}` (file sha256 "
                     f"`{record.get('backbone_sha256', 'n/a')}`, weights fingerprint `{record['backbone_fingerprint']}`); "
                     "loading this head with other backbone weights stops with an error."]  # fmt: skip
        (self.out / "README.md").write_text("\n".join(card) + "\n")
        CONSOLE.print(f"[green]T-NeRF head written to {self.out} ({n:,} parameters)")
        return self.out


if __name__ == "__main__":
    tyro.cli(ExportHead).main()
