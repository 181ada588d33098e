"""Camera rigs for rendering scene grids: orbits around objects and views from inside rooms.

Poses are returned as OpenGL camera-to-world matrices (nerfstudio / Blender convention), world z up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np


@dataclass
class PinholeIntrinsics:
    """Pixel intrinsics of an undistorted pinhole camera."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, height: int, width: int, fov_x_deg: float) -> "PinholeIntrinsics":
        fx = width / 2.0 / math.tan(math.radians(fov_x_deg) / 2.0)
        return cls(width=width, height=height, fx=fx, fy=fx, cx=width / 2.0, cy=height / 2.0)

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)


def look_at_opengl(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """OpenGL camera-to-world (x right, y up, looking along -z) at ``eye`` looking at ``target``; 3x4."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:  # looking straight up or down: pick any horizontal right vector
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right = right / np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    return np.stack([right, cam_up, -forward, eye], axis=1)


@dataclass
class RigVariation:
    """Per-view randomisation of a rig, for varied training data (all off by default: the rigs stay as they were)."""

    distance_scale: Tuple[float, float] = (1.0, 1.0)
    """Range of a per-view factor on the orbit radius (object rigs)."""
    target_jitter: float = 0.0
    """Look-at points moved off the centre, uniformly in a cube of this half-size relative to the orbit radius
    (object rigs) or to the room's half extent (room rigs)."""
    roll_deg: float = 0.0
    """Per-view roll about the viewing axis, uniform in [-roll_deg, roll_deg]."""

    @property
    def active(self) -> bool:
        return self.distance_scale != (1.0, 1.0) or self.target_jitter > 0 or self.roll_deg > 0


def apply_roll(poses: np.ndarray, roll_rad: np.ndarray) -> np.ndarray:
    """Rotate OpenGL camera-to-world poses [n, 3, 4] about their own viewing axis (camera z) by ``roll_rad`` [n]."""
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    rot = np.zeros((len(poses), 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0
    out = poses.copy()
    out[:, :, :3] = poses[:, :, :3] @ rot
    return out


def orbit_poses(
    n: int,
    center: np.ndarray,
    radius: float,
    elevation_deg: Tuple[float, float] = (-10.0, 60.0),
    seed: Optional[int] = 0,
    variation: Optional[RigVariation] = None,
) -> np.ndarray:
    """``n`` cameras around ``center`` on a sphere band, evenly spread (golden-angle spiral), looking at the centre.

    With ``seed`` the spiral is rotated randomly about z (deterministically for a seed). ``variation`` scales each
    view's distance, moves its look-at point by up to ``target_jitter * radius`` per axis and rolls it (its own generator, so
    the spiral itself does not change).
    """
    lo, hi = (math.radians(e) for e in elevation_deg)
    phase = np.random.default_rng(seed).uniform(0, 2 * math.pi) if seed is not None else 0.0
    k = np.arange(n) + 0.5
    z = math.sin(lo) + (math.sin(hi) - math.sin(lo)) * k / n  # uniform in area over the band
    azimuth = phase + k * math.pi * (3.0 - math.sqrt(5.0))
    ring = np.sqrt(np.clip(1 - z**2, 0, 1))
    dirs = np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], axis=-1)
    if variation is None or not variation.active:
        return np.stack([look_at_opengl(center + radius * d, center) for d in dirs])
    rng = np.random.default_rng(None if seed is None else [seed, 1])
    dist = radius * rng.uniform(*variation.distance_scale, size=n)
    targets = center + rng.uniform(-1, 1, size=(n, 3)) * variation.target_jitter * radius
    poses = np.stack([look_at_opengl(center + r * d, t) for r, d, t in zip(dist, dirs, targets)])
    return apply_roll(poses, np.radians(rng.uniform(-variation.roll_deg, variation.roll_deg, size=n)))


def room_poses(
    n: int,
    box: np.ndarray,
    seed: int = 0,
    height: Tuple[float, float] = (0.8, 2.0),
    wall_margin: float = 0.5,
    is_free: Optional[Callable[[np.ndarray], bool]] = None,
    variation: Optional[RigVariation] = None,
) -> np.ndarray:
    """``n`` cameras inside a room box, at standing heights, looking roughly horizontally across the room.

    ``is_free(eye)`` rejects positions inside or next to objects (up to 100 tries per camera). ``variation`` moves
    the look-at points by up to ``target_jitter`` times the room's half extent and rolls the cameras (its own
    generator; ``distance_scale`` does not apply inside a room).
    """
    extra = np.random.default_rng([seed, 1]) if variation is not None and variation.active else None
    rng = np.random.default_rng(seed)
    lo, hi = box[0], box[1]
    margin = np.minimum(wall_margin, (hi - lo)[:2] / 4)
    centre = (lo + hi) / 2
    poses = []
    for i in range(n):
        for _ in range(100):
            eye = np.array(
                [
                    rng.uniform(lo[0] + margin[0], hi[0] - margin[0]),
                    rng.uniform(lo[1] + margin[1], hi[1] - margin[1]),
                    min(rng.uniform(*height), hi[2] - 0.2),
                ]
            )
            if is_free is None or is_free(eye):
                break
        # look past the centre at a spread of directions so the views cover the whole room
        angle = 2 * math.pi * i / n + rng.uniform(-0.3, 0.3)
        target = centre + np.array([math.cos(angle), math.sin(angle), 0.0]) * 0.35 * (hi - lo)
        target[2] = eye[2] + rng.uniform(-0.6, 0.2)
        if extra is not None:
            target = target + extra.uniform(-1, 1, size=3) * variation.target_jitter * (hi - lo) / 2
        if np.linalg.norm((target - eye)[:2]) < 0.5:
            target[:2] = eye[:2] + np.array([math.cos(angle), math.sin(angle)])
        poses.append(look_at_opengl(eye, target))
    poses = np.stack(poses)
    if extra is None:
        return poses
    return apply_roll(poses, np.radians(extra.uniform(-variation.roll_deg, variation.roll_deg, size=n)))
