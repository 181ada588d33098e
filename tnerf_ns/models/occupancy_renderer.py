"""Fast rendering of a predicted field: skip empty space with a per-scene occupancy grid, stop rays once opaque.

Right after a scene is encoded, the field's density is evaluated once on a grid over the canonical box; cells whose
density could make a sample visible (any sub-cell sample, dilated by a margin) are marked occupied. Rays are then
marched with a fine fixed step inside the occupied cells' bounding box; candidates in empty cells are dropped before
the field runs, the remaining samples are evaluated packed (no padding), composited with per-ray segmented sums, and
rays whose transmittance has become negligible stop. Everything is vectorised torch (CPU and CUDA): the only Python
loops are over chunks of rays and over segments along the rays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tnerf_ns.geometry import ray_box_intersection

DensityFn = Callable[[Float[Tensor, "n 3"]], Float[Tensor, "n 1"]]
FieldFn = Callable[[Float[Tensor, "n 3"], Float[Tensor, "n 3"]], Tuple[Float[Tensor, "n 1"], Float[Tensor, "n 3"]]]


@dataclass
class OccupancyGrid:
    """Occupied cells of the canonical box ``[-1, 1]^3`` (density per canonical unit above a threshold)."""

    occupied: Tensor
    """Boolean ``[G, G, G]`` indexed (x, y, z)."""
    box_min: Float[Tensor, "3"]
    box_max: Float[Tensor, "3"]
    """Canonical bounds of the occupied cells (rays are clipped to them)."""

    @property
    def resolution(self) -> int:
        return self.occupied.shape[0]

    @property
    def fraction(self) -> float:
        return float(self.occupied.float().mean())

    @classmethod
    @torch.no_grad()
    def from_density(
        cls,
        density_fn: DensityFn,
        resolution: int = 64,
        samples_per_axis: int = 2,
        threshold: float = 0.01,
        dilation: int = 1,
        chunk: int = 1 << 18,
        device: torch.device | str = "cpu",
    ) -> "OccupancyGrid":
        """Evaluate ``density_fn`` on ``samples_per_axis^3`` points per cell; a cell is occupied when any of them
        makes a one-cell step more opaque than ``threshold``; then dilate by ``dilation`` cells."""
        fine = resolution * samples_per_axis
        axis = (torch.arange(fine, device=device, dtype=torch.float32) + 0.5) / fine * 2 - 1
        cell = 2.0 / resolution
        occupied = torch.zeros(fine**3, dtype=torch.bool, device=device)
        for start in range(0, fine**3, chunk):
            flat = torch.arange(start, min(start + chunk, fine**3), device=device)
            ix, iy, iz = flat // (fine * fine), (flat // fine) % fine, flat % fine
            points = torch.stack([axis[ix], axis[iy], axis[iz]], dim=-1)
            density = density_fn(points)[:, 0]
            occupied[start : start + len(flat)] = 1 - torch.exp(-density * cell) > threshold
        grid = occupied.view(1, 1, fine, fine, fine).float()
        grid = F.max_pool3d(grid, samples_per_axis)  # any sub-cell sample
        if dilation > 0:
            grid = F.max_pool3d(grid, 2 * dilation + 1, stride=1, padding=dilation)
        occ = grid[0, 0] > 0
        cells = torch.nonzero(occ)
        if len(cells):
            box_min = cells.min(0).values.float() * cell - 1
            box_max = (cells.max(0).values.float() + 1) * cell - 1
        else:  # nothing to see: every ray misses
            box_min, box_max = torch.ones(3, device=device), -torch.ones(3, device=device)
        return cls(occ, box_min, box_max)

    def lookup(self, points: Float[Tensor, "*b 3"]) -> Tensor:
        """Whether canonical points fall into occupied cells (outside the box: no)."""
        g = self.resolution
        idx = ((points + 1) / 2 * g).floor().long()
        inside = ((idx >= 0) & (idx < g)).all(-1)
        idx = idx.clamp(0, g - 1)
        return inside & self.occupied[idx[..., 0], idx[..., 1], idx[..., 2]]


def composite_packed(
    ray_indices: Tensor,
    t_mid: Float[Tensor, "n"],
    delta: Float[Tensor, "n"],
    density: Float[Tensor, "n"],
    rgb: Float[Tensor, "n 3"],
    num_rays: int,
    log_transmittance_in: Float[Tensor, "r"],
) -> Dict[str, Tensor]:
    """Volume rendering of packed samples sorted by (ray, t): per-ray colour, opacity, depth, and each ray's log
    transmittance after them (``log_transmittance_in`` is where each ray starts)."""
    tau = density * delta
    cum = torch.cumsum(tau.double(), 0)  # float64: the running sum spans every ray of the chunk
    # exclusive per-ray optical depth: global cumulative sum minus its value just before the ray's first sample
    first = torch.ones_like(ray_indices, dtype=torch.bool)
    first[1:] = ray_indices[1:] != ray_indices[:-1]
    start = torch.zeros(num_rays, dtype=cum.dtype, device=cum.device)
    start[ray_indices[first]] = (cum - tau)[first]
    excl = (cum - tau - start[ray_indices]).to(tau.dtype) - log_transmittance_in[ray_indices]
    weights = torch.exp(-excl) * (1 - torch.exp(-tau))
    out_rgb = torch.zeros(num_rays, 3, dtype=rgb.dtype, device=rgb.device).index_add_(
        0, ray_indices, weights[:, None] * rgb
    )
    acc = torch.zeros(num_rays, dtype=tau.dtype, device=tau.device).index_add_(0, ray_indices, weights)
    depth = torch.zeros(num_rays, dtype=tau.dtype, device=tau.device).index_add_(0, ray_indices, weights * t_mid)
    total = torch.zeros(num_rays, dtype=tau.dtype, device=tau.device).index_add_(0, ray_indices, tau)
    return {"rgb": out_rgb, "accumulation": acc, "depth": depth, "log_transmittance": log_transmittance_in - total}


@torch.no_grad()
def render_occupied(
    grid: OccupancyGrid,
    field_fn: FieldFn,
    origins: Float[Tensor, "r 3"],
    directions: Float[Tensor, "r 3"],
    step: float,
    segment: int = 64,
    min_transmittance: float = 1e-4,
) -> Dict[str, Tensor]:
    """Render rays given in canonical coordinates (unit ``directions``): march with ``step`` inside the occupied
    bounding box, ``segment`` candidates per ray at a time, evaluating ``field_fn`` only in occupied cells.

    Returns per ray ``rgb`` (not composited on a background), ``accumulation``, ``depth`` (canonical distance along
    the ray) and ``samples`` (field evaluations made, for reporting).
    """
    n = origins.shape[0]
    device = origins.device
    t_near, t_far = ray_box_intersection(origins, directions, grid.box_min, grid.box_max)
    rgb = torch.zeros(n, 3, device=device)
    acc = torch.zeros(n, device=device)
    depth = torch.zeros(n, device=device)
    log_t = torch.zeros(n, device=device)
    active = torch.nonzero(t_far > t_near).squeeze(-1)
    n_steps = torch.ceil((t_far - t_near) / step).clamp_min(0).long()
    samples = 0
    k0 = 0
    while active.numel():
        k = torch.arange(k0, k0 + segment, device=device, dtype=torch.float32)
        t = t_near[active, None] + (k + 0.5) * step  # [A, S] candidate midpoints
        valid = k[None] < n_steps[active, None]
        points = origins[active, None] + t[..., None] * directions[active, None]
        keep = valid & grid.lookup(points)
        rows, cols = torch.nonzero(keep, as_tuple=True)  # sorted by (ray, t)
        if rows.numel():
            density, colour = field_fn(points[rows, cols], directions[active[rows]])
            samples += rows.numel()
            rays = active[rows]
            out = composite_packed(rays, t[rows, cols], torch.full_like(t[rows, cols], step), density[:, 0], colour, n,
                                   log_t)  # fmt: skip
            rgb += out["rgb"]
            acc += out["accumulation"]
            depth += out["depth"]
            log_t = out["log_transmittance"]
        k0 += segment
        alive = (torch.exp(log_t[active]) > min_transmittance) & (n_steps[active] > k0)
        active = active[alive]
    return {"rgb": rgb, "accumulation": acc, "depth": depth, "samples": torch.tensor(samples)}
