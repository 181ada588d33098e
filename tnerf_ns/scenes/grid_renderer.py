"""Volume rendering of NeRF-MAE grids: posed RGB, depth and opacity images from (rgb, density) voxels.

Rays are clipped to the scene box, marched with a fixed world step, and only the samples that fall into occupied
blocks of the grid are looked up (trilinear interpolation of the *density*, not of its log), so the cost follows the
occupied part of the grid. Rays whose transmittance has dropped below a threshold stop early. Rays go in chunks so
memory stays bounded; everything is vectorised torch and runs on CPU and CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tnerf_ns.geometry import pixel_rays, ray_box_intersection
from tnerf_ns.scenes.nerfmae import NerfMAEScene


@dataclass
class GridVolume:
    """A scene grid on a device, ready to be sampled."""

    rgb_sigma: Float[Tensor, "1 4 X Y Z"]
    """Colour and density (per NGP length unit) on the corner-aligned lattice."""
    world_min: Float[Tensor, "3"]
    world_max: Float[Tensor, "3"]
    scale: float
    """World metres to NGP units (density * scale = density per metre)."""
    occupancy: Tensor
    """Coarse boolean grid: a block may contain non-negligible density (dilated by the interpolation support)."""
    block: int
    """Voxels per occupancy block along each axis."""
    occupied_min: Float[Tensor, "3"]
    occupied_max: Float[Tensor, "3"]
    """World bounds of the occupied blocks: rays are clipped to them (nothing to see outside)."""

    @classmethod
    def from_scene(
        cls, scene: NerfMAEScene, device: torch.device | str = "cpu", block: int = 8, min_sigma: float = 1e-2
    ) -> "GridVolume":
        sigma = torch.from_numpy(scene.sigma).float()
        rgb = torch.from_numpy(scene.rgb).float()
        grid = torch.cat([rgb, sigma[..., None]], dim=-1).permute(3, 0, 1, 2)[None].contiguous()
        box = torch.from_numpy(scene.world_box).float()
        occupied = (sigma > min_sigma).float()[None, None]
        occupied = F.max_pool3d(occupied, kernel_size=3, stride=1, padding=1)  # trilinear reads neighbours
        coarse = F.max_pool3d(occupied, kernel_size=block, stride=block, ceil_mode=True)[0, 0] > 0
        res = torch.tensor(sigma.shape, dtype=torch.float32)
        blocks = torch.nonzero(coarse).float()
        if len(blocks):
            lo_vox = blocks.min(0).values * block
            hi_vox = torch.minimum((blocks.max(0).values + 1) * block, res - 1)
        else:  # nothing to see: an empty box makes every ray miss
            lo_vox, hi_vox = res - 1, torch.zeros(3)
        to_world = (box[1] - box[0]) / (res - 1)
        return cls(
            rgb_sigma=grid.to(device),
            world_min=box[0].to(device),
            world_max=box[1].to(device),
            scale=scene.scale,
            occupancy=coarse.to(device),
            block=block,
            occupied_min=(box[0] + lo_vox * to_world).to(device),
            occupied_max=(box[0] + hi_vox * to_world).to(device),
        )

    @property
    def resolution(self) -> Tensor:
        return torch.tensor(self.rgb_sigma.shape[2:], device=self.rgb_sigma.device, dtype=torch.float32)

    @property
    def pitch(self) -> float:
        """Mean world spacing of the lattice."""
        return float(((self.world_max - self.world_min) / (self.resolution - 1)).mean())

    def to_grid(self, pts: Float[Tensor, "*b 3"]) -> Float[Tensor, "*b 3"]:
        """World points to continuous lattice coordinates in [0, res - 1]."""
        return (pts - self.world_min) / (self.world_max - self.world_min) * (self.resolution - 1)

    def is_occupied(self, pts: Float[Tensor, "*b 3"]) -> Tensor:
        """Whether points fall into an occupied block (points outside the box are not)."""
        g = self.to_grid(pts)
        inside = ((g >= 0) & (g <= self.resolution - 1)).all(-1)
        idx = (g.clamp_min(0) / self.block).long()
        shape = torch.tensor(self.occupancy.shape, device=idx.device)
        idx = torch.minimum(idx, shape - 1)
        return inside & self.occupancy[idx[..., 0], idx[..., 1], idx[..., 2]]

    def sample(self, pts: Float[Tensor, "n 3"]) -> Tuple[Float[Tensor, "n 3"], Float[Tensor, "n"]]:
        """Trilinear colour and density (per NGP unit) at world points; zero outside the box."""
        g = self.to_grid(pts) / (self.resolution - 1) * 2 - 1
        # grid_sample on a (1, C, X, Y, Z) volume takes coordinates ordered (z, y, x)
        out = F.grid_sample(
            self.rgb_sigma, g.flip(-1)[None, None, None], mode="bilinear", padding_mode="zeros", align_corners=True
        )[0, :, 0, 0]
        return out[:3].T, out[3]


def render_rays(
    volume: GridVolume,
    origins: Float[Tensor, "n 3"],
    dirs: Float[Tensor, "n 3"],
    background: Float[Tensor, "3"] | None = None,
    step: Optional[float] = None,
    chunk: int = 16384,
    segment: int = 64,
    min_transmittance: float = 1e-4,
    jitter: Optional[torch.Generator] = None,
) -> Dict[str, Tensor]:
    """Composite rays through the grid.

    Args:
        volume: the grid.
        origins, dirs: rays in world metres; ``dirs`` need not be unit length (depth is along the unit direction).
        background: colour behind the scene (default white).
        step: world step between samples (default half a voxel).
        chunk: rays per chunk (memory bound).
        segment: steps marched at once before dropping finished rays.
        min_transmittance: a ray stops once less than this much light gets through.
        jitter: random generator for a per-ray start offset in [0, step) (None: deterministic).

    Returns:
        ``rgb`` [n, 3] (composited on the background), ``depth`` [n] (expected distance along the ray, 0 where
        empty), ``opacity`` [n], ``samples`` (number of grid lookups made).
    """
    device = origins.device
    step = step or 0.5 * volume.pitch
    background = torch.ones(3, device=device) if background is None else background.to(device)
    dirs = F.normalize(dirs, dim=-1)
    n = origins.shape[0]
    rgb_out = torch.zeros(n, 3, device=device)
    depth_out = torch.zeros(n, device=device)
    trans_out = torch.ones(n, device=device)
    lookups = 0
    for start in range(0, n, chunk):
        o, d = origins[start : start + chunk], dirs[start : start + chunk]
        t_near, t_far = ray_box_intersection(o, d, volume.occupied_min, volume.occupied_max, eps=1e-12)
        if jitter is not None:
            t_near = t_near + torch.rand(t_near.shape, generator=jitter, device="cpu").to(device) * step
        n_steps = torch.ceil((t_far - t_near) / step).clamp_min(0).long()
        acc_rgb = torch.zeros(o.shape[0], 3, device=device)
        acc_depth = torch.zeros(o.shape[0], device=device)
        trans = torch.ones(o.shape[0], device=device)
        active = torch.nonzero(n_steps > 0).squeeze(-1)
        k0 = 0
        max_steps = int(n_steps.max()) if n_steps.numel() else 0
        while active.numel() and k0 < max_steps:
            k = torch.arange(k0, k0 + segment, device=device, dtype=torch.float32)
            t = t_near[active, None] + (k + 0.5) * step  # [A, S]
            valid = k[None] < n_steps[active, None]
            pts = o[active, None] + t[..., None] * d[active, None]
            hit = valid & volume.is_occupied(pts)
            alpha = torch.zeros_like(t)
            colour = torch.zeros(*t.shape, 3, device=device)
            if hit.any():
                c, s = volume.sample(pts[hit])
                lookups += int(hit.sum())
                alpha[hit] = 1.0 - torch.exp(-s.clamp_min(0) * volume.scale * step)
                colour[hit] = c
            # transmittance before each sample: carried-in value times the exclusive product within the segment
            t_in = trans[active, None] * torch.cumprod(
                torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha[:, :-1]], dim=1), dim=1
            )
            weights = t_in * alpha
            acc_rgb[active] += (weights[..., None] * colour).sum(1)
            acc_depth[active] += (weights * t).sum(1)
            trans[active] = t_in[:, -1] * (1.0 - alpha[:, -1])
            k0 += segment
            keep = (trans[active] > min_transmittance) & (n_steps[active] > k0)
            active = active[keep]
        opacity = 1.0 - trans
        rgb_out[start : start + chunk] = acc_rgb + trans[:, None] * background
        depth_out[start : start + chunk] = torch.where(opacity > 1e-6, acc_depth / opacity.clamp_min(1e-6), 0.0)
        trans_out[start : start + chunk] = trans
    return {"rgb": rgb_out, "depth": depth_out, "opacity": 1.0 - trans_out, "samples": torch.tensor(lookups)}


def camera_rays(
    c2w_gl: Float[Tensor, "3 4"], fx: float, fy: float, cx: float, cy: float, height: int, width: int
) -> Tuple[Float[Tensor, "h w 3"], Float[Tensor, "h w 3"], Float[Tensor, "h w"]]:
    """Pixel-centre rays of an OpenGL camera: origins, unit directions, and the cosine to the optical axis."""
    intrinsics = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], device=c2w_gl.device)
    origins, dirs, norm = pixel_rays(c2w_gl.float(), intrinsics, height, width)
    return origins, dirs, 1.0 / norm


def render_view(
    volume: GridVolume,
    c2w_gl: Float[Tensor, "3 4"],
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    height: int,
    width: int,
    background: Optional[Tensor] = None,
    **kwargs,
) -> Dict[str, Tensor]:
    """One image: ``rgb`` [H, W, 3] on the background, ``depth`` [H, W] (z-depth, 0 where empty), ``opacity``."""
    origins, dirs, cos = camera_rays(c2w_gl.to(volume.rgb_sigma.device).float(), fx, fy, cx, cy, height, width)
    out = render_rays(volume, origins.reshape(-1, 3), dirs.reshape(-1, 3), background, **kwargs)
    return {
        "rgb": out["rgb"].reshape(height, width, 3),
        "depth": out["depth"].reshape(height, width) * cos,  # distance along the ray -> z-depth
        "opacity": out["opacity"].reshape(height, width),
        "samples": out["samples"],
    }


def analytic_sphere_radius_px(distance: float, radius: float, focal: float) -> float:
    """Image radius of a sphere's silhouette seen from ``distance`` (tangent cone) with focal length ``focal``."""
    return focal * math.tan(math.asin(radius / distance))


def numpy_image(t: Tensor) -> np.ndarray:
    """[H, W, C] float in [0, 1] to uint8."""
    return (t.clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
