"""Scale-out: two CPU processes (gloo) train one step each through DDP; ranks see disjoint scenes and the
parameters stay identical after the optimiser step. With a frozen backbone both ranks share one on-disk backbone
cache."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from helpers import make_scenes

WORKER = r"""
import json, sys, torch, torch.distributed as dist
from pathlib import Path
from tnerf_ns.configs import tnerf_trainer_config

rank, world, port, data, out, cache = int(sys.argv[1]), 2, sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
torch.manual_seed(0)  # identical initial weights on every rank (DDP also broadcasts rank 0's at wrap time)
cfg = tnerf_trainer_config().pipeline
cfg.datamanager.data = Path(data)
cfg.datamanager.train_num_rays_per_batch = 32
cfg.datamanager.num_query_points = 32
m = cfg.model
m.triplane_resolution, m.triplane_channels, m.feature_dim = 16, 8, 8
m.num_coarse_samples, m.num_fine_samples, m.backbone_image_width = 8, 8, 42
m.backbone, m.backbone_weights = "vggt-small", None  # random init: trained with the head unless frozen below
if cache != "-":  # the VGGT-1B setting: frozen backbone, outputs cached in a folder all ranks share
    m.train_backbone, m.backbone_cache_dir = False, Path(cache)
pipe = cfg.setup(device="cpu", test_mode="val", world_size=world, local_rank=rank)
pipe.train()
params = [p for g in pipe.model.get_param_groups().values() for p in g]
opt = torch.optim.Adam(params, lr=1e-2)
_, loss, _ = pipe.get_train_loss_dict(step=rank)  # different steps too: the batches surely differ
sum(loss.values()).backward()  # DDP averages the gradients across ranks here
opt.step()
checksum = float(sum(p.double().sum() for p in params))
scenes = sorted(s.name for s in pipe.datamanager.rank_scenes)
Path(out).write_text(json.dumps({"scenes": scenes, "checksum": checksum, "loss": float(sum(loss.values()))}))
dist.barrier()
dist.destroy_process_group()
"""

pytestmark = [pytest.mark.slow, pytest.mark.long]  # DDP end to end: `make test-slow`


@pytest.mark.parametrize("backbone", ["trained", "frozen-cached"])
def test_two_gloo_ranks_train_disjoint_scenes_with_identical_parameters(tmp_path, backbone):
    make_scenes(tmp_path, 5, 20, 5, "28x28")
    (tmp_path / "worker.py").write_text(WORKER)
    cache = str(tmp_path / "cache") if backbone == "frozen-cached" else "-"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = [
        subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(r), port, str(tmp_path / "scenes"),
                          str(tmp_path / f"rank{r}.json"), cache], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in range(2)
    ]  # fmt: skip
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["scenes"] and r1["scenes"] and not set(r0["scenes"]) & set(r1["scenes"])
    assert len(r0["scenes"]) + len(r1["scenes"]) == 4  # 5 scenes, one held out
    assert r0["loss"] != r1["loss"]
    assert abs(r0["checksum"] - r1["checksum"]) < 1e-6 * max(1.0, abs(r0["checksum"]))
    if backbone == "frozen-cached":  # one entry per rank's source set, in the shared folder, nothing half-written
        assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2
        assert not list((tmp_path / "cache").glob(".tmp-*"))
