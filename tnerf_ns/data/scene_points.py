"""3-D query points with ground truth from a scene grid, in the canonical (normalised) frame of the dataparser.

Three kinds of points, each a configurable share of a batch:

* **occupied**: inside matter (voxel opacity above a threshold);
* **near surface**: empty voxels within a few voxels of matter (where the geometry is decided);
* **empty**: free space anywhere else in the box, which must come out transparent.

Each point is jittered within its voxel and its ground truth is trilinearly interpolated from the grid: colour,
density per normalised length unit, and the opacity of a reference step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tnerf_ns.scene_context import PointBatch
from tnerf_ns.scenes.grid_renderer import GridVolume
from tnerf_ns.scenes.nerfmae import load_scene


class ScenePointSampler:
    """Samples query points of one scene grid (one time state) with ground truth.

    Args:
        grid: path of the NeRF-MAE grid file.
        centre: world centre used by the dataparser's normalisation.
        world_to_unit: canonical length per world metre.
        occupied_threshold: voxel opacity (NeRF-MAE convention) above which a voxel counts as matter.
        near_voxels: width of the near-surface band, in voxels.
        reference_step: canonical step length the returned opacity refers to.
        device: where the grid and the samples live.
    """

    def __init__(
        self,
        grid: Union[str, Path],
        centre: np.ndarray,
        world_to_unit: float,
        occupied_threshold: float = 0.01,
        near_voxels: int = 3,
        reference_step: float = 0.02,
        device: torch.device | str = "cpu",
    ) -> None:
        scene = load_scene(grid)
        self.volume = GridVolume.from_scene(scene, device)
        self.device = torch.device(device)
        self.centre = torch.as_tensor(np.asarray(centre), dtype=torch.float32, device=self.device)
        self.world_to_unit = float(world_to_unit)
        self.reference_step = reference_step
        occ = torch.from_numpy(scene.opacity > occupied_threshold)
        near = F.max_pool3d(occ[None, None].float(), 2 * near_voxels + 1, 1, near_voxels)[0, 0] > 0
        self.res = torch.tensor(occ.shape, dtype=torch.float32)
        self.sets = {
            0: torch.nonzero(occ).to(self.device),
            1: torch.nonzero(near & ~occ).to(self.device),
            2: torch.nonzero(~near).to(self.device),
        }

    def world_from_unit(self, pts: Tensor) -> Tensor:
        return pts / self.world_to_unit + self.centre

    def unit_from_world(self, pts: Tensor) -> Tensor:
        return (pts - self.centre) * self.world_to_unit

    def ground_truth(self, unit_pts: Float[Tensor, "n 3"]) -> Tuple[Tensor, Tensor, Tensor]:
        """Colour, canonical density and reference-step opacity at canonical points (zero density outside)."""
        rgb, sigma_ngp = self.volume.sample(self.world_from_unit(unit_pts))
        # NGP density -> per metre (x scale) -> per canonical unit (/ world_to_unit)
        density = sigma_ngp.clamp_min(0) * self.volume.scale / self.world_to_unit
        return rgb, density, 1.0 - torch.exp(-density * self.reference_step)

    def sample(
        self,
        n: int,
        fractions: Tuple[float, float, float] = (0.4, 0.3, 0.3),
        generator: Optional[torch.Generator] = None,
    ) -> PointBatch:
        """``n`` points split between occupied / near-surface / empty by ``fractions`` (empty sets are skipped)."""
        weights = torch.tensor(fractions, dtype=torch.float64)
        weights = weights * torch.tensor([len(self.sets[k]) > 0 for k in range(3)], dtype=torch.float64)
        if weights.sum() == 0:
            raise ValueError("scene grid has no voxels to sample")
        counts = torch.floor(weights / weights.sum() * n).long()
        counts[int(torch.argmax(weights))] += n - int(counts.sum())
        voxels, kinds = [], []
        for k in range(3):
            if counts[k] == 0:
                continue
            pick = torch.randint(len(self.sets[k]), (int(counts[k]),), generator=generator)
            voxels.append(self.sets[k][pick.to(self.device)].float())
            kinds.append(torch.full((int(counts[k]),), k, dtype=torch.long))
        vox = torch.cat(voxels)
        jitter = torch.rand(vox.shape, generator=generator).to(self.device) - 0.5
        g = (vox + jitter).clamp(torch.zeros(3, device=self.device), (self.res - 1).to(self.device))
        world = self.volume.world_min + g / (self.res.to(self.device) - 1) * (
            self.volume.world_max - self.volume.world_min
        )
        unit = self.unit_from_world(world)
        rgb, density, opacity = self.ground_truth(unit)
        return PointBatch(
            positions=unit, rgb=rgb, density=density, opacity=opacity, kind=torch.cat(kinds).to(self.device)
        )

    def statistics(self) -> Dict[str, int]:
        return {name: len(self.sets[k]) for k, name in enumerate(("occupied", "near_surface", "empty"))}
