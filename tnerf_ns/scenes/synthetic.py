"""Synthetic scenes in exactly the NeRF-MAE format: analytic primitives rasterised onto a voxel grid.

Object scenes (a few textured primitives around the origin, like the Blender set) and room scenes (a shell of
floor, walls and ceiling with furniture, like the indoor pre-training data). Dynamic scenes move and turn their
objects linearly between t0 and t1 and are written at several times, so interpolation can be scored.
Deterministic for a seed.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field, replace
from typing import List, Literal, Optional, Sequence

import numpy as np
from scipy import ndimage

from tnerf_ns.scenes.nerfmae import CULLED, MAX_RESOLUTION, NerfMAEScene, world_to_ngp_axes

SceneKind = Literal["object", "tabletop", "room"]
"""object: things floating in the void of their box; tabletop: the same things on a textured floor that fills the
box's bottom, often before a backdrop (what a capture of an object on a table shows); room: a room shell with
furniture."""
OBJECT_KINDS = ("object", "tabletop")
"""Kinds framed by an orbit of cameras around their matter."""
PrimitiveKind = Literal["box", "sphere", "cylinder", "capsule"]
NGP_CULL_SIGMA = 5.9
"""Instant-NGP culls cells whose density is below about this (reference §1.4)."""


@dataclass
class Primitive:
    """A solid with a colour and a procedural texture, posed by a centre and a yaw about z."""

    kind: PrimitiveKind
    center: np.ndarray
    """World position (metres)."""
    half: np.ndarray
    """Half extents (box), or (radius, radius, half height) for cylinders/capsules, (r, r, r) for spheres."""
    yaw: float
    color: np.ndarray
    """Base sRGB colour in [0, 1]."""
    texture: Literal["plain", "checker", "stripes", "noise"]
    period: float
    """Texture period in metres."""
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    """Displacement between t0 and t1 (dynamic scenes)."""
    spin: float = 0.0
    """Yaw change between t0 and t1 (radians)."""
    static: bool = False
    """Part of the room shell (never moves)."""

    def at(self, t: float) -> "Primitive":
        """The primitive's pose at normalised time ``t``."""
        if self.static or t == 0.0:
            return self
        return replace(self, center=self.center + t * self.velocity, yaw=self.yaw + t * self.spin)

    def local(self, pts: np.ndarray) -> np.ndarray:
        """World points to the primitive's frame."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        d = pts - self.center
        return np.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1], d[..., 2]], axis=-1)

    def sdf(self, pts: np.ndarray) -> np.ndarray:
        """Signed distance (negative inside), metres."""
        p = self.local(pts)
        if self.kind == "box":
            q = np.abs(p) - self.half
            outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
            return outside + np.minimum(q.max(axis=-1), 0.0)
        if self.kind == "sphere":
            return np.linalg.norm(p, axis=-1) - self.half[0]
        if self.kind == "cylinder":
            radial = np.linalg.norm(p[..., :2], axis=-1) - self.half[0]
            axial = np.abs(p[..., 2]) - self.half[2]
            q = np.stack([radial, axial], axis=-1)
            return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0)
        # capsule: a segment along z of half length (h - r), radius r
        r = self.half[0]
        seg = np.clip(p[..., 2], -(self.half[2] - r), self.half[2] - r)
        return np.linalg.norm(p - np.stack([0 * seg, 0 * seg, seg], axis=-1), axis=-1) - r

    def colour(self, pts: np.ndarray, noise_phase: np.ndarray) -> np.ndarray:
        """Textured colour at points (the texture is attached to the object and moves with it)."""
        base = np.broadcast_to(self.color, pts.shape).astype(np.float32)
        if self.texture == "plain":
            return base
        p = self.local(pts) / self.period
        if self.texture == "checker":
            mask = (np.floor(p).astype(np.int64).sum(-1) % 2).astype(np.float32)[..., None]
            return base * (1.0 - 0.45 * mask)
        if self.texture == "stripes":
            mask = (np.floor(p[..., 2] * 2).astype(np.int64) % 2).astype(np.float32)[..., None]
            return np.clip(base * (1.0 - 0.5 * mask) + 0.25 * mask, 0, 1)
        wave = sum(np.sin(p @ noise_phase[i, :3] + noise_phase[i, 3]) for i in range(noise_phase.shape[0]))
        return np.clip(base + 0.12 * (wave / noise_phase.shape[0])[..., None], 0.0, 1.0)


@dataclass
class SceneSpec:
    """Everything needed to rasterise a scene at any time."""

    name: str
    kind: SceneKind
    box: np.ndarray
    """World box ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` in metres."""
    primitives: List[Primitive]
    sigma_max: float
    """Density inside solids, per NGP length unit."""
    noise_phase: np.ndarray
    dynamic: bool = False


def random_colour(rng: np.random.Generator) -> np.ndarray:
    h, s, v = rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.95)
    return np.asarray(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def _random_primitive(rng: np.random.Generator, size_range: Sequence[float]) -> Primitive:
    kind = rng.choice(["box", "sphere", "cylinder", "capsule"], p=[0.4, 0.2, 0.25, 0.15])
    size = rng.uniform(*size_range)
    if kind == "box":
        half = size / 2 * rng.uniform(0.4, 1.0, size=3)
    elif kind == "sphere":
        half = np.full(3, size / 2 * rng.uniform(0.6, 1.0))
    else:
        r = size / 2 * rng.uniform(0.3, 0.7)
        half = np.array([r, r, max(r * 1.05, size / 2 * rng.uniform(0.6, 1.0))])
    texture = rng.choice(["plain", "checker", "stripes", "noise"], p=[0.25, 0.3, 0.2, 0.25])
    return Primitive(
        kind=str(kind),
        center=np.zeros(3),
        half=half,
        yaw=float(rng.uniform(0, 2 * math.pi)),
        color=random_colour(rng),
        texture=str(texture),
        period=float(size * rng.uniform(0.15, 0.4)),
    )


def _bottom(prim: Primitive) -> float:
    """Distance from the centre to the lowest point (yaw keeps z extents)."""
    return float(prim.half[2])


def _table_and_backdrop(rng: np.random.Generator, top: float) -> List[Primitive]:
    """A textured floor slab filling the bottom of the [-0.5, 0.5] box up to ``top`` and, in 60 % of the scenes, a
    darker backdrop wall along one side (captures of objects on tables show both, often to the edge of the box)."""
    thick = top + 0.5
    floor = Primitive(
        "box", np.array([0.0, 0.0, -0.5 + thick / 2]), np.array([0.5, 0.5, thick / 2]), 0.0,
        random_colour(rng), str(rng.choice(["plain", "checker", "noise", "stripes"], p=[0.2, 0.35, 0.35, 0.1])),
        float(rng.uniform(0.05, 0.2)), static=True,
    )  # fmt: skip
    prims = [floor]
    if rng.uniform() < 0.6:
        side, axis = float(rng.choice([-1.0, 1.0])), int(rng.integers(2))
        centre, half = np.zeros(3), np.array([0.5, 0.5, 0.5])
        centre[axis], half[axis] = side * 0.485, 0.015
        colour = random_colour(rng) * rng.uniform(0.15, 0.6)  # backdrops are mostly dark or muted
        texture = str(rng.choice(["plain", "noise", "checker"], p=[0.5, 0.3, 0.2]))
        prims.append(Primitive("box", centre, half, 0.0, colour.astype(np.float32), texture, 0.15, static=True))
    return prims


def sample_scene(rng: np.random.Generator, name: str, kind: SceneKind = "object", dynamic: bool = False) -> SceneSpec:
    """A random scene: 3-6 objects (object scenes; on a floor, often before a backdrop, in tabletop scenes) or a room
    shell with 3-8 pieces of furniture (room scenes)."""
    prims: List[Primitive] = []
    if kind in OBJECT_KINDS:
        box = np.array([[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]])
        floor_z = -0.5 + (0.06 if kind == "tabletop" else 0.02)  # a table top a few voxels thick
        for _ in range(int(rng.integers(3, 7))):
            p = _random_primitive(rng, (0.2, 0.5))
            p.center = np.array([rng.uniform(-0.22, 0.22), rng.uniform(-0.22, 0.22), 0.0])
            # rest on the ground, sometimes stacked on an earlier object
            base = floor_z
            if prims and rng.uniform() < 0.3:
                below = prims[int(rng.integers(len(prims)))]
                p.center[:2] = below.center[:2] + rng.uniform(-0.05, 0.05, size=2)
                base = below.center[2] + _bottom(below)
            p.center[2] = min(base + _bottom(p), 0.5 - p.half[2] - 0.02)
            prims.append(p)
        if kind == "tabletop":
            prims.extend(_table_and_backdrop(rng, floor_z))
        move = 0.2
    else:
        size = np.array([rng.uniform(3, 8), rng.uniform(3, 8), rng.uniform(2.4, 3.2)])
        box = np.stack([np.zeros(3), size])
        thick = rng.uniform(0.05, 0.1)
        wall_colour = random_colour(rng) * 0.3 + 0.65
        shell = []
        for axis in range(3):
            for side in (0, 1):
                half = size / 2 + thick
                half[axis] = thick / 2
                centre = size / 2
                centre = centre.copy()
                centre[axis] = thick / 2 if side == 0 else size[axis] - thick / 2
                colour = wall_colour if axis < 2 else (random_colour(rng) if side == 0 else np.ones(3) * 0.9)
                tex = "checker" if (axis == 2 and side == 0 and rng.uniform() < 0.6) else "plain"
                shell.append(Primitive("box", centre, half, 0.0, np.asarray(colour, np.float32), tex, 0.5, static=True))
        prims.extend(shell)
        for _ in range(int(rng.integers(3, 9))):
            p = _random_primitive(rng, (0.3, 1.6))
            margin = p.half.max() + thick + 0.1
            p.center = np.array([rng.uniform(margin, size[0] - margin), rng.uniform(margin, size[1] - margin), 0.0])
            p.center[2] = min(thick + _bottom(p), size[2] - thick - p.half[2])
            prims.append(p)
        move = 0.6
    if dynamic:
        for p in prims:
            if not p.static:
                direction = rng.normal(size=2)
                direction /= np.linalg.norm(direction) + 1e-9
                p.velocity = np.array([*(direction * rng.uniform(0.3, 1.0) * move), 0.0])
                p.spin = float(rng.uniform(-0.8, 0.8))
    return SceneSpec(
        name=name,
        kind=kind,
        box=box,
        primitives=prims,
        sigma_max=float(rng.uniform(300, 3000)),
        noise_phase=rng.normal(size=(3, 4)) * np.array([2.0, 2.0, 2.0, 3.0]),
        dynamic=dynamic,
    )


def grid_resolution(extent: np.ndarray, max_res: int) -> np.ndarray:
    """NeRF-MAE's dynamic resolution rule, per world axis: longest side ``max_res``, others even."""
    res = (extent / extent.max() * max_res).astype(np.int64)
    res = np.minimum(res, max_res)
    res = res + (res % 2)
    return np.maximum(res, 2)


def rasterise(spec: SceneSpec, t: float = 0.0, max_res: int = MAX_RESOLUTION, seed: int = 0) -> NerfMAEScene:
    """Sample the scene at time ``t`` on a corner-aligned lattice and encode it like Instant-NGP grids."""
    rng = np.random.default_rng(seed)
    extent = spec.box[1] - spec.box[0]
    res = grid_resolution(extent, max_res)
    axes = [np.linspace(spec.box[0, i], spec.box[1, i], res[i], dtype=np.float64) for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    pitch = float((extent / (res - 1)).mean())

    prims = [p.at(t) for p in spec.primitives]
    sdfs = np.stack([p.sdf(pts) for p in prims], axis=0)
    owner = sdfs.argmin(axis=0)
    sdf = np.take_along_axis(sdfs, owner[None], axis=0)[0]
    rgb = np.zeros(pts.shape, np.float32)
    for i, p in enumerate(prims):
        sel = owner == i
        if sel.any():
            rgb[sel] = p.colour(pts[sel], spec.noise_phase)

    # density: a one-voxel linear edge; NGP units are world * scale
    sigma = spec.sigma_max * np.clip(0.5 - sdf / pitch, 0.0, 1.0)
    near = (sdf < 2.5 * pitch) & (sigma < NGP_CULL_SIGMA)
    raw = np.full(sdf.shape, CULLED, np.float32)
    dense = sigma >= NGP_CULL_SIGMA
    raw[dense] = np.log(sigma[dense])
    # NGP keeps a band of low raw values next to surfaces (its occupancy cells are coarser than the grid)
    raw[near] = rng.uniform(-4.0, 1.5, size=int(near.sum())).astype(np.float32)

    # empty space: NGP's colour there is the MLP's smooth guess, not zero -> spread the nearest surface colour
    solid = sdf <= 0.5 * pitch
    if solid.any() and not solid.all():
        _, idx = ndimage.distance_transform_edt(~solid, return_indices=True)
        spread = rgb[idx[0], idx[1], idx[2]]
        rgb = np.where(solid[..., None], rgb, spread + rng.normal(0, 0.05, size=rgb.shape).astype(np.float32))
    rgb = np.clip(rgb, 0.0, 1.0).astype(np.float32)

    scale = 1.5 / float(extent.max())
    centre = spec.box.mean(axis=0)
    offset = 0.5 - scale * centre
    ngp_lo = world_to_ngp_axes(spec.box[0] * scale + offset)
    ngp_hi = world_to_ngp_axes(spec.box[1] * scale + offset)
    extras = {
        "room_bbox_world": spec.box.astype(np.float32),
        "voxel_size_world": np.float32(pitch),
        "source": np.str_("synthetic"),
        "scene_kind": np.str_(spec.kind),
    }
    if spec.kind == "tabletop":  # cameras frame the things on the table; the table runs out of the picture
        things = [p for p in prims if not p.static]  # each thing's bounding sphere, clipped to the box
        centres = np.stack([p.center for p in things])
        radii = np.stack([np.linalg.norm(p.half) for p in things])[:, None]
        subject = np.stack([(centres - radii).min(0), (centres + radii).max(0)])
        extras["subject_box"] = subject.clip(spec.box[0], spec.box[1]).astype(np.float32)
    if spec.dynamic:
        extras["time"] = np.float32(t)
        extras["scene_group"] = np.str_(spec.name)
    return NerfMAEScene(
        name=spec.name if not spec.dynamic else f"{spec.name}_t{round(t * 100):03d}",
        path=None,
        rgb=rgb,
        raw_density=raw,
        density_kind="ngp_log",
        bbox_min=ngp_lo,
        bbox_max=ngp_hi,
        scale=scale,
        offset=offset,
        extras=extras,
    )


def scene_statistics(scene: NerfMAEScene) -> dict:
    """Occupancy and culling fractions, for the budget checks of the reference (§5.2 step 10)."""
    alpha = scene.opacity
    return {
        "occupied_fraction": float((alpha > 0.01).mean()),
        "culled_fraction": float((scene.raw_density <= CULLED / 2).mean()),
        "grid_shape": list(scene.grid_shape),
    }


def generate_scene(
    seed: int, index: int, kind: SceneKind, dynamic: bool, max_res: int, times: Optional[Sequence[float]] = None
) -> List[NerfMAEScene]:
    """One scene (static: one grid; dynamic: one grid per time), resampled until it passes the budget checks."""
    rng = np.random.default_rng([seed, index])
    name = f"synth_{index:06d}"
    for attempt in range(20):
        spec = sample_scene(rng, name, kind, dynamic)
        first = rasterise(spec, 0.0, max_res, seed=seed * 100003 + index)
        stats = scene_statistics(first)
        # object scenes are mostly air; rooms follow the reference's budget (5-35 % occupied); a table is a few %
        lo, hi = {"object": (0.002, 0.35), "tabletop": (0.01, 0.45)}.get(kind, (0.05, 0.45))
        if lo <= stats["occupied_fraction"] <= hi or attempt == 19:
            break
    if not dynamic:
        return [first]
    times = list(times) if times is not None else [0.0, 0.25, 0.5, 0.75, 1.0]
    return [first if t == 0.0 else rasterise(spec, t, max_res, seed=seed * 100003 + index) for t in times]
