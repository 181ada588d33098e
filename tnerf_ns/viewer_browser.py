"""A headless Chromium driven over the Chrome DevTools protocol: open the viewer's page, wait for its first render,
screenshot it, drag the mouse (the viewer's browser test and ``scripts/capture_cli_check.py``). Only the standard
library and ``websockets`` (a viser dependency) are used."""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from tnerf_ns.system_deps import BROWSERS


def find_browser() -> Optional[str]:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    """Until ``url`` answers (or ``proc`` exits, or ``timeout`` seconds pass)."""
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class Chromium:
    """One headless Chromium with one page; WebGL through SwiftShader (no GPU needed)."""

    def __init__(self, binary: str, profile: Path, width: int = 1000, height: int = 700) -> None:
        from websockets.sync.client import connect

        port = free_port()
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu-sandbox", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader", "--no-first-run", "--no-default-browser-check"]  # fmt: skip
        args = [binary, *flags, f"--window-size={width},{height}", f"--remote-debugging-port={port}",
                f"--user-data-dir={profile}", "about:blank"]  # fmt: skip
        # its own process group: closing ends its helper processes too
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_http(f"http://127.0.0.1:{port}/json/version", 60, self.proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.ids = itertools.count(1)
        self.width, self.height = width, height

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        """Send a command, return its result (events received meanwhile are dropped)."""
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        end = time.time() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(end - time.time(), 0.1)))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)  # fmt: skip
        self.call("Page.navigate", url=url)

    def screenshot(self, tries: int = 20) -> np.ndarray:
        """The page as RGB; retried while a navigation swaps the page's renderer ("Not attached to an active
        page")."""
        for attempt in range(tries):
            try:
                data = self.call("Page.captureScreenshot", format="png")["data"]
                return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
            except RuntimeError as err:
                if "Not attached" not in str(err) or attempt == tries - 1:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def drag(self, start: tuple, end: tuple, steps: int = 12) -> None:
        """Left-button drag (orbits the viewer's camera)."""
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=start[0], y=start[1])
        self.call("Input.dispatchMouseEvent", type="mousePressed", x=start[0], y=start[1], button="left",
                  clickCount=1, buttons=1)  # fmt: skip
        for t in np.linspace(0, 1, steps)[1:]:
            x, y = start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])
            self.call("Input.dispatchMouseEvent", type="mouseMoved", x=float(x), y=float(y), button="left",
                      buttons=1)  # fmt: skip
            time.sleep(0.03)
        self.call("Input.dispatchMouseEvent", type="mouseReleased", x=end[0], y=end[1], button="left", clickCount=1,
                  buttons=0)  # fmt: skip

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(10)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue


RENDER_AREA = (slice(90, 610), slice(20, 640))
"""Rows and columns of a 1000x700 screenshot inside the viewer's 3-D canvas: left of the control panel, below the
title bar, away from the world-axes gizmo in the bottom-left corner."""
EMPTY_CANVAS = 17
"""Grey level of the viewer's dark canvas before any render."""


def page_resolution(browser: Chromium) -> tuple:
    """The render resolution the viewer's panel reports ((0, 0) before the first render)."""
    try:
        text = browser.call("Runtime.evaluate", expression="document.body.innerText", returnByValue=True)
    except RuntimeError:  # the page is still loading (no document or execution context yet)
        return (0, 0)
    match = re.search(r"Resolution:\s*(\d+)\D+(\d+)px", str(text.get("result", {}).get("value", "")))
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def wait_for_render(browser: Chromium, previous: np.ndarray, timeout: float) -> np.ndarray:
    """The first screenshot whose render area shows a picture different from ``previous`` (that area of an earlier
    screenshot, or the empty canvas)."""
    end = time.time() + timeout
    while time.time() < end:
        shot = browser.screenshot()
        area = shot[RENDER_AREA].astype(np.float32)
        if page_resolution(browser) != (0, 0) and area.std() > 10 and np.abs(area - previous).mean() > 2:
            return shot
        time.sleep(1)
    raise TimeoutError(f"no new render within {timeout:.0f} s")
