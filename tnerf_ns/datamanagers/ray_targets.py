"""Where a training step's target rays come from: the moment of a dynamic scene, and the images (the scene's views
outside the step's source set, and optionally a share from the source views themselves, the input views the
prediction must reproduce)."""

from __future__ import annotations

from typing import Dict, Optional

import torch
from jaxtyping import Int
from torch import Tensor

from tnerf_ns.datamanagers.context import SceneEntry


def draw_time(entry: SceneEntry, generator: torch.Generator) -> float:
    """One of a dynamic scene's moments, uniformly."""
    values = entry.time_values
    return values[int(torch.randint(len(values), (1,), generator=generator))]


def pick_target_images(
    entry: SceneEntry,
    local: Dict[int, int],
    num_rays: int,
    generator: torch.Generator,
    source_set: Optional[int] = None,
    time: Optional[float] = None,
    input_share: float = 0.0,
) -> Int[Tensor, "num_rays"]:
    """The image of each of ``num_rays`` rays, as positions in the scene's image stack (``local`` maps the scene's
    image indices to them). Dynamic scenes: images at ``time`` only. The first ``input_share`` of the rays come from
    the inputs (those at ``time``), the rest from the other views."""
    if not 0.0 <= input_share <= 1.0:
        raise ValueError(f"--pipeline.datamanager.input-view-ray-share must lie in [0, 1], got {input_share}")
    target_indices = entry.targets(source_set) if time is None else entry.targets_at(time, source_set)
    targets = torch.tensor([local[i] for i in target_indices])
    pick = targets[torch.randint(len(targets), (num_rays,), generator=generator)]
    if input_share > 0:
        inputs = entry.inputs(source_set)
        if time is not None:
            at_time = set(entry.images_at(time))
            inputs = [i for i in inputs if i in at_time]
        if inputs:
            own = torch.tensor([local[i] for i in inputs])
            n_in = min(round(input_share * num_rays), num_rays)
            pick[:n_in] = own[torch.randint(len(own), (n_in,), generator=generator)]
    return pick
