"""How the comparison reads a scene folder: which nerfstudio parser, in which frame, and the near/far its cameras need.

Blender-layout folders (``transforms_train.json``: NeRF-synthetic, and the scenes of ``scripts/render_scenes.py``) go
through nerfstudio's Blender parser; other folders and transforms files (captures) through its nerfstudio parser with
its defaults (poses oriented up, centred and scaled into the unit cube), as a nerfstudio user trains on them: nerfacto
on its home turf. T-NeRF places its box from the cameras in any frame (``tnerf_ns.placement``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
import torch

from tnerf_ns.evaluation import baselines
from tnerf_ns.scenes.render_dataset import recorded_world_box


def parser_config(data: Path):
    """The dataparser config of ``data`` (Blender parser scaled onto T-NeRF's frame, else nerfstudio's defaults)."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    if (data / "transforms_train.json").exists():
        return BlenderDataParserConfig(data=data, scale_factor=blender_scale(data))
    return NerfstudioDataParserConfig(data=data)  # what `ns-train <method> nerfstudio-data --data <data>` reads


def blender_scale(data: Path) -> float:
    """Scenes from scripts/render_scenes.py record their world box: scale it onto the Blender parser's fixed
    [-1.5, 1.5] box (the frame T-NeRF was trained in). Other Blender scenes (lego) are used as they are."""
    box = recorded_world_box(data)
    if box is None:
        return 1.0
    if np.abs(box.mean(0)).max() > 1e-6 * np.abs(box).max():
        raise ValueError(f"{data / 'transforms.json'}: scene box {box.tolist()} is not centred at the origin; the "
                         "Blender parser cannot shift it")  # fmt: skip
    return 3.0 / float((box[1] - box[0]).max())


def near_far(data: Path) -> Tuple[float, float]:
    """Near/far of a generated scene, from its box and training cameras (in the parser's scaled frame)."""
    c2w, aabb = baselines.parser_cameras(parser_config(data))
    box = recorded_world_box(data)
    if box is not None:
        aabb = torch.as_tensor(box * blender_scale(data), dtype=torch.float32)
    return baselines.near_far_from_cameras(c2w, aabb)
