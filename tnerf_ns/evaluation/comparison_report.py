"""``comparison.md`` and ``psnr_vs_time.png``, made from the rows of ``comparison.json`` only (so ``--replot`` can
redraw them without running anything)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List

EMPTY_FIELD = "empty field (background only)"
MEAN_COLOUR = "mean-colour image (of the input views)"
TRIVIAL = (EMPTY_FIELD, MEAN_COLOUR)
"""Rows without a time axis: levels to beat."""
FEED_FORWARD = ("tnerf feed-forward", "reprojection baseline")


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def shown(path) -> str:
    """A path as a reader of the table would type it: relative to the working folder (the repository root when
    ``make results`` runs), so tables do not carry one machine's absolute paths."""
    path = Path(str(path))
    return os.path.relpath(path) if path.is_absolute() else str(path)


def write_table(rows: List[Dict], out: Path, data: Path, console=None) -> str:
    """One table (both splits side by side per method and setting), the settings each method ran with, notes."""
    keyed: Dict[tuple, Dict[str, Dict]] = {}
    for r in rows:
        keyed.setdefault((r["method"], r["setting"]), {})[r["split"]] = r
    masked = any(r.get("psnr_masked") is not None for r in rows)
    lines = [f"Scene `{shown(data)}`; PSNR/SSIM on the views each method was given (input) and on held-out views (novel)"
             + ("; object-masked PSNR (the object pixels only, RegNeRF's definition) where the capture has masks."
                if masked else "."),
             "", "| method | setting | steps | seconds | views | image | input PSNR | input SSIM | novel PSNR | novel SSIM |"
             + (" input PSNR masked | novel PSNR masked |" if masked else ""),
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|" + ("---:|---:|" if masked else "")]  # fmt: skip
    for (method, setting), splits in keyed.items():
        first = splits.get("novel") or splits.get("input")
        inp, nov = splits.get("input", {}), splits.get("novel", {})
        views = "/".join(str(s["eval_views"]) for s in (inp, nov) if s)
        size = "x".join(str(v) for v in first["image_size"])
        lines.append(f"| {method} | {setting} | {first['steps']} | {first['seconds']:.1f} | {views} | {size} | "
                     f"{_fmt(inp.get('psnr'), 2)} | {_fmt(inp.get('ssim'), 3)} | {_fmt(nov.get('psnr'), 2)} | "
                     f"{_fmt(nov.get('ssim'), 3)} |"
                     + (f" {_fmt(inp.get('psnr_masked'), 2)} | {_fmt(nov.get('psnr_masked'), 2)} |" if masked else ""))  # fmt: skip
    lines += ["", "| method | background | near | far | scene contraction | camera optimiser | rays per step | preset |",
              "|---|---|---:|---:|---|---|---:|---|"]  # fmt: skip
    seen = set()
    for r in rows:
        s = r["baseline_settings"]
        key = (r["method"].split(" (")[0] if s["preset"] != "tnerf" else "tnerf", s["preset"])
        if key in seen or r["method"] in ("reprojection baseline", *TRIVIAL):
            continue
        seen.add(key)
        name = "tnerf (feed-forward and refined)" if s["preset"] == "tnerf" else r["method"]
        lines.append(f"| {name} | {s['background']} | {s['near']:.2f} | {s['far']:.2f} | "
                     f"{'on' if s['scene_contraction'] else 'off'} | {s['camera_optimizer']} | {s['rays_per_step']} | "
                     f"{s['preset']} |")  # fmt: skip
    lines.append("")
    pre = next((r for r in rows if r.get("pretraining_seconds") is not None), None)
    if pre is not None:
        lines.append(f"T-NeRF's one-off pre-training (not per scene): {pre['pretraining_seconds']:.0f} s, "
                     f"{pre.get('pretraining_steps')} steps on `{shown(pre['pretraining_data'])}`"
                     + (f"; backbone: {pre['backbone']}." if pre.get("backbone") else "."))  # fmt: skip
    depth = next((r["depth_source"] for r in rows if r.get("depth_source")), None)
    if depth is not None:
        lines.append(f"Reprojection baseline: the K source views' foreground pixels forward-splatted with {depth}, "
                     "z-buffered, holes white.")  # fmt: skip
    kept = [r for r in rows if r.get("kept")]
    if kept:
        dates = sorted({r.get("date", "before dates were recorded") for r in kept})
        lines.append(f"Kept from an earlier run of the same protocol on a machine of the same speed (per-scene rows do "
                     f"not depend on T-NeRF's checkpoint): {', '.join(dict.fromkeys(r['method'] for r in kept))}, "
                     f"measured {', '.join(dates)}.")  # fmt: skip
    lines.append(
        "Seconds: feed-forward rows, encode + render of one image (model built, data loaded); budget rows, "
        "training time at the budget (model construction included, evaluation excluded). Views: input/novel."
    )
    text = "\n".join(lines) + "\n"
    (out / "comparison.md").write_text(text)
    if console is not None:
        console.print(text)
    return text


def plot(rows: List[Dict], out: Path) -> None:
    """PSNR against wall-clock seconds, one panel per split; pre-training marked as a one-off cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, split in zip(axes, ("novel", "input")):
        these = [r for r in rows if r["split"] == split]
        for method in dict.fromkeys(r["method"] for r in these):
            pts = [r for r in these if r["method"] == method]
            if method in TRIVIAL:  # no time axis: a level to beat
                ax.axhline(pts[0]["psnr"], color="black" if method == EMPTY_FIELD else "grey", ls=":", lw=1,
                           label=method)  # fmt: skip
                continue
            ax.plot([r["seconds"] for r in pts], [r["psnr"] for r in pts], "o" if method in FEED_FORWARD else "o-",
                    label=method)  # fmt: skip
            if method in FEED_FORWARD:
                for r in pts:
                    ax.annotate(r["setting"], (r["seconds"], r["psnr"]), textcoords="offset points", xytext=(4, 3),
                                fontsize=7)  # fmt: skip
        pre = next((r["pretraining_seconds"] for r in rows if r.get("pretraining_seconds")), None)
        if pre:
            ax.axvline(pre, color="grey", ls="--", lw=1)
            ax.annotate("T-NeRF pre-training\n(one-off)", (pre, ax.get_ylim()[0]), fontsize=7, color="grey",
                        xytext=(3, 5), textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("wall-clock seconds (log)")
        ax.set_title(f"{split} views")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR (dB)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "psnr_vs_time.png", dpi=110)
    plt.close(fig)
