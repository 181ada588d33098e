"""Scoring and the rows of ``comparison.json``.

Every method is scored by the same code on the same images: rendered RGB against the dataset image composited on
white (the Blender benchmark's background), PSNR and SSIM per image, averaged. Two splits, the seed's two measures:
``input`` (the views the method was given: T-NeRF's source views, a per-scene method's training views) and ``novel``
(held-out views).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from jaxtyping import Float
from rich.progress import track
from torch import Tensor
from torchmetrics.functional import structural_similarity_index_measure

from tnerf_ns.report import psnr

ROW_KEYS = ("method", "setting", "baseline_settings", "split", "eval_views", "image_size", "steps", "seconds", "psnr",
            "ssim")  # fmt: skip
"""The keys every row of comparison.json has (more may follow)."""


@dataclass
class ComparisonRow:
    method: str
    setting: str
    baseline_settings: Dict
    split: str
    """``input`` or ``novel``."""
    eval_views: int
    image_size: List[int]
    """[h, w] of the scored images."""
    steps: int
    seconds: float
    """Feed-forward: encode + render of one image; per-scene methods: training time at the budget."""
    psnr: float
    ssim: float
    extra: Dict = field(default_factory=dict)
    """Anything else worth keeping (per-row notes such as the depth source of the reprojection baseline)."""

    def as_dict(self) -> Dict:
        row = asdict(self)
        row.update(row.pop("extra"))
        return row


class ComparisonFileError(ValueError):
    """A ``comparison.json`` that cannot be read as rows (the message names the file)."""


def read_rows(path: Path) -> List[Dict]:
    """The rows of a ``comparison.json``, checked: a JSON list of objects, each with at least ``ROW_KEYS``."""
    try:
        rows = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ComparisonFileError(f"{path}: not readable as JSON ({err})") from err
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ComparisonFileError(f"{path}: expected a list of row objects")
    for i, row in enumerate(rows):
        missing = [k for k in ROW_KEYS if k not in row]
        if missing:
            raise ComparisonFileError(f"{path}: row {i} lacks {', '.join(missing)}")
    return rows


LEGACY_VALUES = {"device": "cpu"}
"""What rows written before a key was recorded had: every earlier comparison ran on the CPU."""

SPEED_KEY = "calibration_seconds"
SPEED_TOLERANCE = 1.25
"""Budgets are wall-clock seconds, so a baseline's rows hold only on a machine about as fast as the one they were made
on: kept when the two calibration times (``calibration_seconds``) are within this factor of each other."""


def calibration_seconds(device: str) -> float:
    """Median seconds of a fixed workload on ``device``: matrix products and a random gather from a hash-grid-sized
    table, the two kinds of work NeRF training does. Recorded in each trained row (see ``SPEED_TOLERANCE``)."""
    from tnerf_ns.benchmarking import median_seconds

    gen = torch.Generator().manual_seed(0)
    a = (torch.randn(768, 768, generator=gen) / 768**0.5).to(device)
    table = torch.randn(1 << 19, 8, generator=gen).to(device)
    index = torch.randint(0, 1 << 19, (1 << 20,), generator=gen).to(device)

    def work() -> None:
        b = a
        for _ in range(4):
            b = torch.tanh(b @ a)
        table.index_select(0, index).sum()

    return median_seconds(work, device, repeats=7, warmup=2)


def same_value(a, b) -> bool:
    """Equal, floats up to rounding (values read back from JSON against values computed again)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-6 * max(1, abs(a))
    return a == b


def reusable_rows(
    previous: List[Dict], method: str, expected: Dict[Tuple[str, str], Dict], tolerance: float = SPEED_TOLERANCE
) -> Optional[List[Dict]]:
    """The rows of ``method`` from an earlier ``comparison.json`` when they are exactly the rows this run would make
    (one per (setting, split) of ``expected``, each with the values ``expected`` gives it), else None.

    Per-scene baselines do not depend on T-NeRF's checkpoint, so re-running the protocol for a new checkpoint can keep
    theirs. A key an older row lacks is taken from ``LEGACY_VALUES``, or not checked when it is not there; except the
    machine's speed (``SPEED_KEY``, within ``tolerance``): rows that do not record it are not kept, since their
    budgets cannot be vouched for.
    """
    rows = [r for r in previous if r["method"] == method]
    found = {(r["setting"], r["split"]): r for r in rows}
    if len(rows) != len(expected) or found.keys() != expected.keys():
        return None
    for key, wanted in expected.items():
        row = found[key]
        for name, value in wanted.items():
            if name == SPEED_KEY:
                have = row.get(name)
                if have is None or not 1 / tolerance <= value / have <= tolerance:
                    return None
                continue
            have = row.get(name, LEGACY_VALUES.get(name))
            if have is not None and not same_value(have, value):
                return None
    return [{**r, "kept": True} for r in rows]


def on_white(image: Float[Tensor, "h w c"]) -> Float[Tensor, "h w 3"]:
    """RGB of an RGB or RGBA image composited on white."""
    if image.shape[-1] == 4:
        return image[..., :3] * image[..., 3:] + (1 - image[..., 3:])
    return image[..., :3]


def ssim(a: Tensor, b: Tensor) -> float:
    return float(structural_similarity_index_measure(a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None],
                                                     data_range=1.0))  # fmt: skip


def spread(n_total: int, n: int) -> List[int]:
    """``n`` indices spread evenly over ``range(n_total)``."""
    return sorted({int(i) for i in np.linspace(0, n_total - 1, min(n, n_total)).round()})


@dataclass
class Scores:
    psnr: float
    ssim: float
    views: int
    image_size: List[int]
    renders: Dict[int, Tensor] = field(default_factory=dict)
    """Renders of the views asked for by ``keep`` (for figures)."""
    psnr_masked: Optional[float] = None
    """Object-masked PSNR (``tnerf_ns.evaluation.masks``) over the views that have a mask; None without masks."""


def score_views(
    render: Callable[[int], Tensor],
    dataset,
    indices: Sequence[int],
    label: str = "scoring",
    keep: Sequence[int] = (),
    masks: Optional[Callable[[int, tuple], Optional[Tensor]]] = None,
) -> Scores:
    """Mean PSNR/SSIM of ``render(i)`` ([h, w, 3] in [0, 1]) against image ``i`` of ``dataset`` on white; with
    ``masks`` (``masks.mask_finder``), also the mean object-masked PSNR of the views that have a mask."""
    from tnerf_ns.evaluation.masks import psnr_of  # masks imports this module

    values, renders, size, masked = [], {}, [0, 0], []
    for i in track(list(indices), description=label, transient=True):
        gt = on_white(dataset.get_image_float32(int(i)))
        with torch.no_grad():
            rgb = render(int(i)).detach().float().cpu().clamp(0, 1)
        if rgb.shape != gt.shape:
            raise ValueError(f"{label}: render of view {i} is {tuple(rgb.shape)}, its image {tuple(gt.shape)}")
        values.append((psnr(rgb, gt), ssim(rgb, gt)))
        mask = masks(int(i), tuple(gt.shape[:2])) if masks is not None else None
        if mask is not None:
            masked.append(psnr_of(rgb, gt, mask))
        size = list(gt.shape[:2])
        if i in keep:
            renders[int(i)] = rgb
    mean = np.mean(np.array(values), axis=0) if values else (float("nan"), float("nan"))
    return Scores(float(mean[0]), float(mean[1]), len(values), size, renders,
                  float(np.mean(masked)) if masked else None)  # fmt: skip


def camera_renderer(pipeline, dataset) -> Callable[[int], Tensor]:
    """``render(i)``: the model's RGB for camera ``i`` of ``dataset``, composited as the model composites."""

    def render(i: int) -> Tensor:
        camera = dataset.cameras[i : i + 1].to(pipeline.device)
        return pipeline.model.get_outputs_for_camera(camera)["rgb"]

    return render


def training_seconds(run_dir: Path) -> Optional[float]:
    """Wall time of a nerfstudio training run, from its tensorboard events (first to last logged step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted(run_dir.glob("events.out.tfevents.*"))
    if not events:
        return None
    acc = EventAccumulator(str(events[-1]), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    tag = "Train Loss" if "Train Loss" in tags else (tags[0] if tags else None)
    if tag is None:
        return None
    scalars = acc.Scalars(tag)
    return float(scalars[-1].wall_time - scalars[0].wall_time)


def backbone_description(model_config) -> str:
    """What T-NeRF's backbone was, for the tables: preset, frozen or trained, and where its weights came from (with
    the pre-training summary a checkpoint of ``scripts/pretrain_vggt.py`` carries in its metadata)."""
    weights = model_config.resolved_backbone_weights
    if weights is None:
        trained = (
            "trained with the head" if model_config.train_backbone and model_config.backbone != "vggt-1b" else "frozen"
        )
        return f"{model_config.backbone}, random init, {trained}"
    text = f"{model_config.backbone}, frozen, pre-trained weights `{Path(str(weights)).name}`"
    if str(weights).endswith(".safetensors") and Path(weights).is_file():
        from safetensors import safe_open

        with safe_open(str(weights), "pt") as f:
            card = json.loads((f.metadata() or {}).get("tnerf_card", "{}"))
        if card:
            text += f" ({card.get('steps')} steps of VGGT's objectives on {card.get('train_scenes')} generated scenes)"
    return text
