"""Installing the plugin into an existing nerfstudio environment keeps that environment's torch (and numpy): the
package states ranges, the exact pins of this machine live in constraints.txt (used by make setup only)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import REPO
from packaging.requirements import Requirement

USER_ENV = {"torch": "2.11.0", "torchvision": "0.26.0", "numpy": "2.1.0", "nerfstudio": "1.1.5", "tyro": "0.8.0",
            "einops": "0.8.0", "huggingface_hub": "0.30.0", "safetensors": "0.4.0", "rich": "13.0.0",
            "tensorboard": "2.15.0", "imageio_ffmpeg": "0.5.0", "pillow": "10.0.0"}  # fmt: skip
"""A user's environment: an older allowed torch (a CUDA build, say) and numpy 2."""


def test_dry_run_install_into_an_existing_environment_replaces_nothing(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    for name, version in USER_ENV.items():  # installed distributions as pip sees them (metadata only)
        info = Path(site) / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")
    report = tmp_path / "report.json"
    proc = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
                           str(REPO)], capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    installs = [
        item["metadata"]["name"].lower().replace("-", "_") for item in json.loads(report.read_text())["install"]
    ]
    assert installs == ["tnerf_ns"]  # torch 2.11, numpy 2 and the rest are kept


def test_declared_ranges_are_the_tested_versions():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    requirements = {Requirement(r).name.lower(): Requirement(r) for r in [*extras, *project["dependencies"]]}
    pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().split() if "==" in line)
    for name, version in {**pins, "torch": "2.11.0", "numpy": "2.1.0", "torchvision": "0.26.0"}.items():
        assert requirements[name.lower()].specifier.contains(version), (name, version)  # both tested stacks allowed
    assert not requirements["torch"].specifier.contains("2.10.0")  # untested older torch is not claimed
    assert sysconfig.get_python_version() >= "3.10"
