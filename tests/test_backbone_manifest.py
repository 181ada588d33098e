"""State-dict compatibility with the official VGGT-1B checkpoint (keys and shapes, from the manifests)."""

from __future__ import annotations

import json
import re

import torch

from tnerf_ns.backbone import VGGT, get_vggt_config


def meta_state_shapes(config: str) -> dict:
    with torch.device("meta"):
        model = VGGT(get_vggt_config(config))
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_vggt1b_matches_no_track_manifest(reference_dir):
    manifest = json.loads((reference_dir / "vggt1b_no_track_manifest.json").read_text())
    ours = meta_state_shapes("vggt-1b")
    assert len(ours) == manifest["num_keys"] == 1403
    missing = sorted(set(manifest["state_dict"]) - set(ours))
    extra = sorted(set(ours) - set(manifest["state_dict"]))
    assert not missing and not extra, (missing[:5], extra[:5])
    wrong = {k: (v, manifest["state_dict"][k]) for k, v in ours.items() if v != manifest["state_dict"][k]}
    assert not wrong
    total = sum(torch.Size(s).numel() for s in ours.values())
    assert total == manifest["total_numel"] == 1_190_596_120


def test_full_manifest_differs_only_by_track_head(reference_dir):
    full = json.loads((reference_dir / "vggt1b_manifest.json").read_text())["state_dict"]
    ours = meta_state_shapes("vggt-1b")
    assert {k for k in full if not k.startswith("track_head.")} == set(ours)
    assert len(full) == 1797


def test_small_config_has_the_same_module_structure(reference_dir):
    """After collapsing layer indices the small config's key patterns equal VGGT-1B's."""

    def patterns(keys):
        return {re.sub(r"\.\d+\.", ".#.", k) for k in keys}

    small = meta_state_shapes("vggt-small")
    big = meta_state_shapes("vggt-1b")
    assert patterns(small) == patterns(big)
    assert 1_000_000 < sum(torch.Size(s).numel() for s in small.values()) < 10_000_000
