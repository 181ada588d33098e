"""The viewer in a real browser: ``ns-viewer`` on the tiny trained run, on loopback, opened in headless Chromium.

Waits for the first render (the panel's "Resolution: W×Hpx" leaves 0×0 and the render area stops being the empty
dark canvas), screenshots it, checks that the render area shows a picture and that it changes when the camera is
orbited with a mouse drag. Training cameras are not drawn (``--viewer.max-num-display-images 0``), so what the canvas
shows is the render. Skipped only where no Chromium binary exists (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
from helpers import BIN, REPO, env
from PIL import Image

from tnerf_ns.viewer_browser import (
    EMPTY_CANVAS,
    RENDER_AREA,
    Chromium,
    find_browser,
    free_port,
    wait_for_http,
    wait_for_render,
)

pytestmark = pytest.mark.slow  # end to end: `make test` runs it, `make test-fast` skips it

BROWSER = find_browser()
WIDTH, HEIGHT = 1000, 700


@pytest.mark.skipif(BROWSER is None, reason="no Chromium binary (Debian: apt-get install chromium)")
def test_viewer_shows_the_render_in_a_browser_and_follows_the_camera(trained, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "viewer.log").open("w")
    viewer = subprocess.Popen(
        [str(BIN / "ns-viewer"), "--load-config", str(trained), "--viewer.websocket-host", "127.0.0.1",
         "--viewer.websocket-port", str(port), "--viewer.max-num-display-images", "0"],
        cwd=REPO, env=env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    browser = None
    try:
        wait_for_http(url, 300, viewer)
        browser = Chromium(BROWSER, tmp_path / "profile", WIDTH, HEIGHT)
        browser.open(url)
        empty = np.full((HEIGHT, WIDTH, 3), EMPTY_CANVAS, np.float32)[RENDER_AREA]  # the dark canvas before any render
        first = wait_for_render(browser, empty, 240)
        Image.fromarray(first).save(tmp_path / "first.png")
        area = first[RENDER_AREA].astype(np.float32)
        # a picture: the object on the scene's white background, neither one flat colour nor the empty canvas
        assert area.std() > 20, f"flat render area (std {area.std():.1f}), see {tmp_path / 'first.png'}"
        assert (area.mean(-1) > 200).mean() > 0.05 and (area.mean(-1) < 180).mean() > 0.02
        time.sleep(3)  # the viewer refines the first picture: let it settle before moving
        settled = browser.screenshot()
        browser.drag((330, 350), (480, 320))
        moved = wait_for_render(browser, settled[RENDER_AREA].astype(np.float32), 240)
        Image.fromarray(moved).save(tmp_path / "moved.png")
        change = np.abs(moved[RENDER_AREA].astype(np.float32) - settled[RENDER_AREA]).mean()
        assert change > 2, f"the render did not follow the camera (mean change {change:.2f})"
    finally:
        if browser is not None:
            browser.close()
        viewer.terminate()
        try:
            viewer.wait(30)
        except subprocess.TimeoutExpired:
            viewer.kill()
        log.close()
