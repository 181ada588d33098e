"""Photos to a mesh in one step: a trained T-NeRF's predicted density on a grid, marching cubes, colours from the field.

    python scripts/export_mesh.py --load-config outputs/.../config.yml --out mesh.ply
    python scripts/export_mesh.py --load-config ... --out mesh.ply --scene-idx 3 --resolution 256

The scene (default: the run's default scene, the one the viewer shows) is encoded from its source views as for
rendering; the density is evaluated on ``resolution^3`` points spanning the scene box, in chunks (memory: the grid
plus one chunk); scikit-image's marching cubes extracts the surface at ``--density-threshold`` (per canonical unit;
default: the density at which a step of the model's ``point_reference_step`` is ``--opacity`` opaque), and each
vertex takes the field's colour averaged over six view directions. Vertices are in the dataset frame (the frame of
``ns-export``'s default output). Writes a binary little-endian PLY with per-vertex colours.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import tyro
from jaxtyping import Float, Int
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from torch import Tensor

CONSOLE = Console()


class MeshExportError(RuntimeError):
    """The mesh cannot be made; the message names the config file and what to change."""


@dataclass
class Args:
    """Export the surface of a trained T-NeRF prediction as a coloured triangle mesh (.ply)."""

    load_config: Path
    """config.yml of a trained tnerf / tnerf-dynamic run."""
    out: Path = Path("mesh.ply")
    """Output .ply file."""
    scene_idx: Optional[int] = None
    """Global scene index (as in the dataset's cameras); default: the run's default scene."""
    resolution: int = 128
    """Grid points per axis over the longest side of the scene box."""
    density_threshold: Optional[float] = None
    """Surface level of the predicted density, per canonical unit (the box scaled to [-1, 1]); default: from
    --opacity."""
    opacity: float = 0.5
    """Default surface level: a step of the model's point_reference_step through the surface is this opaque."""
    time: Optional[float] = None
    """Dynamic runs: prediction time in [0, 1]; default: the model's default_time."""
    chunk: int = 1 << 18
    """Points per field evaluation (bounds the memory next to the grid itself)."""


def grid_axes(aabb: Float[Tensor, "2 3"], resolution: int) -> list[Tensor]:
    """Sample positions per axis: ``resolution`` over the longest side, the same spacing on the others."""
    extent = aabb[1] - aabb[0]
    spacing = float(extent.max()) / (resolution - 1)
    counts = [max(2, int(round(float(e) / spacing)) + 1) for e in extent]
    return [aabb[0, i] + torch.arange(n, dtype=torch.float32) * spacing for i, n in enumerate(counts)]


@torch.no_grad()
def density_grid(model, planes: Tensor, axes: list[Tensor], chunk: int, progress: Progress) -> np.ndarray:
    """The field's density (per canonical unit) at every grid point, ``[nx, ny, nz]``, evaluated chunk by chunk."""
    nx, ny, nz = (len(a) for a in axes)
    total = nx * ny * nz
    out = np.empty(total, dtype=np.float32)
    device = planes.device
    task = progress.add_task("density grid", total=total)
    for start in range(0, total, chunk):
        flat = torch.arange(start, min(start + chunk, total))
        ix, iy, iz = flat // (ny * nz), (flat // nz) % ny, flat % nz
        points = torch.stack([axes[0][ix], axes[1][iy], axes[2][iz]], dim=-1).to(device)
        density, _ = model.field.decode(planes, model.box.to_canonical(points))
        out[start : start + len(flat)] = density[:, 0].float().cpu().numpy()
        progress.advance(task, len(flat))
    return out.reshape(nx, ny, nz)


@torch.no_grad()
def vertex_colours(model, planes: Tensor, vertices: Float[Tensor, "n 3"], chunk: int) -> np.ndarray:
    """Field colour at each vertex, averaged over the six axis directions (view-independent), as uint8."""
    dirs = torch.cat([torch.eye(3), -torch.eye(3)]).to(planes.device)
    colours = []
    for start in range(0, len(vertices), max(chunk // 6, 1)):
        pts = model.box.to_canonical(vertices[start : start + max(chunk // 6, 1)].to(planes.device))
        rep = pts.repeat_interleave(6, dim=0)
        _, rgb = model.field.decode(planes, rep, dirs.repeat(len(pts), 1))
        colours.append(rgb.view(len(pts), 6, 3).mean(1).cpu())
    rgb = torch.cat(colours) if colours else torch.zeros(0, 3)
    return (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def write_ply(path: Path, vertices: np.ndarray, faces: Int[np.ndarray, "m 3"], colours: np.ndarray) -> None:
    """Binary little-endian PLY: float xyz + uchar rgb per vertex, uchar-counted int triangles."""
    vert = np.empty(len(vertices), dtype=[("p", "<f4", 3), ("c", "u1", 3)])
    vert["p"], vert["c"] = vertices, colours
    face = np.empty(len(faces), dtype=[("n", "u1"), ("i", "<i4", 3)])
    face["n"], face["i"] = 3, faces
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(vert)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(face)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(vert.tobytes())
        f.write(face.tobytes())


def export_mesh(args: Args) -> dict:
    """Make the mesh; returns a summary (vertex and face counts, threshold, seconds)."""
    try:
        from skimage.measure import marching_cubes
    except ImportError as err:  # a nerfstudio dependency, so normally present
        raise MeshExportError("scikit-image is needed for marching cubes: pip install scikit-image") from err
    from nerfstudio.utils.eval_utils import eval_setup

    if not args.load_config.is_file():
        raise MeshExportError(f"{args.load_config}: no such config file (pass a run's config.yml)")
    if args.resolution < 8:
        raise MeshExportError(f"--resolution {args.resolution}: use at least 8 points per axis")
    start = time.perf_counter()
    _, pipeline, _, _ = eval_setup(args.load_config, test_mode="inference")
    model = pipeline.model
    provider = getattr(model, "context_provider", None)
    if provider is None or not hasattr(model, "field"):
        raise MeshExportError(f"{args.load_config}: not a T-NeRF run (tnerf or tnerf-dynamic)")
    scene = provider.default_scene if args.scene_idx is None else args.scene_idx
    if scene not in provider.scenes:
        known = sorted(provider.scenes)
        raise MeshExportError(f"{args.load_config}: --scene-idx {scene} is not a scene of this run (known: {known})")
    when = args.time if args.time is not None else model.prediction_time
    planes = model.encoder.encode_cached(provider.context(scene, time=when))
    if args.density_threshold is not None:
        level = args.density_threshold
    else:
        if not 0 < args.opacity < 1:
            raise MeshExportError(f"--opacity {args.opacity}: must be between 0 and 1")
        level = -math.log(1 - args.opacity) / model.config.point_reference_step
    aabb = model.scene_box.aabb.float().cpu()
    axes = grid_axes(aabb, args.resolution)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    with Progress(*columns, console=CONSOLE) as progress:
        density = density_grid(model, planes, axes, args.chunk, progress)
    lo, hi = float(density.min()), float(density.max())
    if not lo < level < hi:
        raise MeshExportError(
            f"{args.load_config}: scene {provider.entry(scene).name}: no surface at density {level:.4g} (the "
            f"predicted density spans [{lo:.4g}, {hi:.4g}]); pass --density-threshold inside that range"
        )
    spacing = tuple(float(a[1] - a[0]) for a in axes)
    verts, faces, _, _ = marching_cubes(density, level=level, spacing=spacing)
    vertices = torch.from_numpy(verts.astype(np.float32)) + aabb[0]
    colours = vertex_colours(model, planes, vertices, args.chunk)
    write_ply(args.out, vertices.numpy(), faces.astype(np.int32), colours)
    summary = {
        "scene": provider.entry(scene).name,
        "vertices": len(vertices),
        "faces": len(faces),
        "density_threshold": level,
        "grid": [len(a) for a in axes],
        "seconds": time.perf_counter() - start,
    }
    CONSOLE.print(
        f"[bold green]{args.out}[/]: {summary['vertices']} vertices, {summary['faces']} faces (scene "
        f"{summary['scene']}, grid {'x'.join(map(str, summary['grid']))}, density {level:.4g}, "
        f"{summary['seconds']:.1f} s)"
    )
    return summary


def main() -> None:
    try:
        export_mesh(tyro.cli(Args))
    except MeshExportError as err:
        CONSOLE.print(f"[bold red]error:[/] {err}")
        sys.exit(2)


if __name__ == "__main__":
    main()
