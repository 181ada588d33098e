#!/usr/bin/env python
"""nerfstudio's own commands on a real capture, as a user runs them (issue 29): ``ns-train tnerf`` in scene mode (0
iterations: the shipped head's prediction), ``ns-eval``, ``ns-render spiral`` and ``ns-viewer`` (its page served and a
headless-Chromium screenshot of its first render, when Chromium exists); then ``ns-train tnerf`` with
``--refine-iterations`` steps of scene-mode refinement from the shipped head, and ``ns-eval`` of the refined field.

    python scripts/capture_cli_check.py --label fox -- nerfstudio-data --data ../shared/data/captures/fox
    python scripts/capture_cli_check.py --label fox-colmap \
        --train-args="--pipeline.model.backbone vggt-small --pipeline.datamanager.placement.mode cameras" \
        -- tnerf-photos --data ../shared/data/captures/fox/images --poser colmap

Everything after ``--`` is the dataparser and its arguments. Writes ``<out>/cli-<label>.json`` (each command, its wall
time, ns-eval's metrics) and ``<out>/cli-<label>-viewer.png``; the run and the video stay in ``--work``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import tyro
from PIL import Image
from rich.console import Console

from tnerf_ns.viewer_browser import (
    EMPTY_CANVAS,
    RENDER_AREA,
    Chromium,
    find_browser,
    free_port,
    wait_for_http,
    wait_for_render,
)

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)
BIN = Path(sys.executable).parent


def shown(args: List[str]) -> str:
    """A command as the log records it: paths inside the repository relative to it."""
    return " ".join(args).replace(f"{REPO}{os.sep}", "")


@dataclass
class CaptureCliCheck:
    """ns-train (0 iterations), ns-eval, ns-render and ns-viewer on a capture."""

    parser: tyro.conf.Positional[List[str]] = field(default_factory=list)
    """The dataparser and its arguments (after ``--``)."""
    label: str = "capture"
    """Name of this check (cli-<label>.json)."""
    train_args: str = "--pipeline.model.backbone vggt-small --pipeline.model.occupancy-step 0.015625"
    """ns-train's method arguments, one string (``--train-args="..."``): the shipped head, and the capture renderer's
    step of scripts/evaluate_capture.py."""
    render_args: str = "--downscale-factor 4 --seconds 2 --frame-rate 4"
    """ns-render spiral's arguments, one string (a short, small video: this checks that it runs)."""
    refine_iterations: int = 30
    """Steps of the refined run (ns-train with N iterations, then ns-eval; 0: left out). A check that it runs and
    moves the numbers, not a budgeted comparison (scripts/compare_methods.py is that)."""
    viewer_seconds: float = 240.0
    """How long the viewer may take to serve its page and render the screenshot."""
    work: Path = REPO / "demo_output" / "capture_cli"
    """Runs and videos."""
    out: Path = REPO / "docs" / "results" / "capture"
    """Where cli-<label>.json and the viewer screenshot go."""

    def screenshot_first_render(self, binary: str, url: str, shot: Path, start: float) -> Optional[float]:
        """Open the viewer in headless Chromium, wait for its first render and save it; seconds from the viewer's
        start to that render (None: none within ``viewer_seconds``, the page is saved as it is)."""
        browser = Chromium(binary, self.work / "chromium-profile")
        try:
            browser.open(url)
            empty = np.full((browser.height, browser.width, 3), EMPTY_CANVAS, np.float32)[RENDER_AREA]
            try:
                picture = wait_for_render(browser, empty, max(self.viewer_seconds - (time.perf_counter() - start), 10))
                seconds = round(time.perf_counter() - start, 1)
            except TimeoutError:
                picture, seconds = browser.screenshot(), None
            Image.fromarray(picture).save(shot)
            return seconds
        finally:
            browser.close()

    def run(self, name: str, args: List[str], log: Dict) -> subprocess.CompletedProcess:
        command = [str(BIN / args[0]), *args[1:]]
        CONSOLE.rule(name)
        CONSOLE.print(" ".join(args), soft_wrap=True)
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False, env=self.env())
        log[name] = {
            "command": shown(args),
            "seconds": round(time.perf_counter() - start, 1),
            "rc": proc.returncode,
        }
        if proc.returncode != 0:
            self.write(log)
            sys.exit(f"{name} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def env(self) -> Dict[str, str]:
        return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def write(self, log: Dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"cli-{self.label}.json").write_text(json.dumps(log, indent=2) + "\n")

    def viewer(self, config: Path, log: Dict) -> None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        args = ["ns-viewer", "--load-config", str(config), "--viewer.websocket-host", "127.0.0.1",
                "--viewer.websocket-port", str(port), "--viewer.max-num-display-images", "0"]  # fmt: skip
        CONSOLE.rule("ns-viewer")
        start = time.perf_counter()
        viewer_log = (self.work / f"{self.label}-viewer.log").open("w")
        proc = subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=REPO, env=self.env(), stdout=viewer_log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        served, shot, rendered, page_seconds = False, None, None, None
        try:
            try:
                wait_for_http(url, self.viewer_seconds, proc)
                served = True
            except (TimeoutError, RuntimeError):  # not within viewer_seconds, or the viewer exited
                served = False
            page_seconds = round(time.perf_counter() - start, 1) if served else None
            binary = find_browser()
            if served and binary:
                shot = self.out / f"cli-{self.label}-viewer.png"
                rendered = self.screenshot_first_render(binary, url, shot, start)
        finally:
            alive = proc.poll() is None
            proc.terminate()
            proc.wait(timeout=30)
        log["ns-viewer"] = {"command": shown(args), "page_served": served, "still_running": alive,
                            "seconds_to_page": page_seconds, "seconds_to_render": rendered,
                            "screenshot": None if shot is None or not shot.is_file() else str(shot).replace(f"{REPO}{os.sep}", "")}  # fmt: skip
        if not (served and alive):
            self.write(log)
            sys.exit(f"ns-viewer did not serve its page (log: {viewer_log.name})")

    def refine(self, train: List[str], log: Dict) -> None:
        """The same ns-train command with N iterations (scene mode refines the shipped head's prediction), evaluated."""
        name = f"ns-train ({self.refine_iterations} iterations)"
        steps = train.index("--max-num-iterations") + 1
        refine = [*train[:steps], str(self.refine_iterations), *train[steps + 1 :]]
        refine[refine.index("--timestamp") + 1] = "refined"
        self.run(name, refine, log)
        config = self.work / self.label / "tnerf" / "refined" / "config.yml"
        metrics = self.work / f"{self.label}-refined-eval.json"
        self.run("ns-eval (refined)", ["ns-eval", "--load-config", str(config), "--output-path", str(metrics)], log)
        log["ns-eval (refined)"]["results"] = json.loads(metrics.read_text())["results"]

    def main(self) -> None:
        if not self.parser:
            raise SystemExit("give the dataparser and its arguments after --, e.g. -- nerfstudio-data --data PATH")
        self.work.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)  # the viewer screenshot is saved there before the log
        log: Dict = {"label": self.label, "parser": " ".join(self.parser)}
        train = ["ns-train", "tnerf", "--machine.device-type", "cpu", *shlex.split(self.train_args), "--max-num-iterations", "0",
                 "--output-dir", str(self.work), "--experiment-name", self.label, "--timestamp", "ff", "--vis",
                 "tensorboard", *self.parser]  # fmt: skip
        self.run("ns-train (0 iterations)", train, log)
        config = self.work / self.label / "tnerf" / "ff" / "config.yml"
        metrics = self.work / f"{self.label}-eval.json"
        self.run("ns-eval", ["ns-eval", "--load-config", str(config), "--output-path", str(metrics)], log)
        log["ns-eval"]["results"] = json.loads(metrics.read_text())["results"]
        video = self.work / f"{self.label}.mp4"
        render = ["ns-render", "spiral", "--load-config", str(config), "--output-path", str(video)]
        render += shlex.split(self.render_args)
        self.run("ns-render spiral", render, log)
        log["ns-render spiral"]["video_bytes"] = video.stat().st_size
        self.viewer(config, log)
        if self.refine_iterations > 0:
            self.refine(train, log)
        self.write(log)
        CONSOLE.print(json.dumps(log, indent=2))


if __name__ == "__main__":
    tyro.cli(CaptureCliCheck).main()
