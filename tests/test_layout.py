"""The package layout keeps its promises: configs and checkpoints written before the encoder refactor still load and
train, the one-home-per-convention rules hold, and the shared LRU cache behaves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from tnerf_ns.encoding import DynamicSceneEncoder, LRUCache, SceneEncoder
from tnerf_ns.models.checkpoints import migrate_state_dict
from tnerf_ns.models.tnerf_model import TNeRFModel

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "configs"
PACKAGE = Path(__file__).resolve().parents[1] / "tnerf_ns"


def load_old_config(name: str, data: Path):
    config = yaml.load((FIXTURES / name).read_text(), Loader=yaml.Loader)  # how nerfstudio reads config.yml
    config.pipeline.datamanager.data = config.pipeline.datamanager.dataparser.data = data
    return config


@pytest.mark.parametrize(
    "name, encoder",
    [("tnerf_before_refactor.yml", SceneEncoder), ("tnerf_dynamic_before_refactor.yml", DynamicSceneEncoder)],
)
def test_config_written_before_the_refactor_loads_and_trains(name, encoder, scenes):
    config = load_old_config(name, scenes)
    pipeline = config.pipeline.setup(device="cpu", test_mode="val")
    assert type(pipeline.model) is TNeRFModel and type(pipeline.model.encoder) is encoder
    assert pipeline.model.context_provider is pipeline.datamanager.context_provider
    pipeline.train()
    _, loss_dict, _ = pipeline.get_train_loss_dict(0)
    assert {"rgb_loss", "point_opacity_loss", "source_weight_loss"} <= set(loss_dict)
    total = sum(loss_dict.values())
    assert torch.isfinite(total)
    total.backward()
    assert pipeline.model.encoder.lifter.refine_in.weight.grad is not None


def test_checkpoint_with_pre_refactor_names_loads(scenes):
    pipeline = load_old_config("tnerf_before_refactor.yml", scenes).pipeline.setup(device="cpu", test_mode="val")
    current = {k: v.clone() for k, v in pipeline.state_dict().items()}
    # the parts that existed before the encoder module (the projection branch came later, under encoder.)
    legacy = {re.sub(r"^_model\.encoder\.(backbone|latent_head|lifter)\.", r"_model.\1.", k):
              v + 1.0 if v.is_floating_point() else v for k, v in current.items()}  # fmt: skip
    assert "_model.latent_head.dpt.scratch.output_conv2.2.bias" in legacy
    pipeline.load_state_dict(legacy, strict=True)
    after = pipeline.state_dict()
    key = "_model.encoder.latent_head.dpt.scratch.output_conv2.2.bias"
    torch.testing.assert_close(after[key], current[key] + 1.0)  # the legacy-named weights were loaded
    state = {"backbone.x": 1, "encoder.lifter.y": 2, "field.z": 3, "lifter.w": 4}
    migrate_state_dict(state)
    assert state == {"encoder.backbone.x": 1, "encoder.lifter.y": 2, "field.z": 3, "encoder.lifter.w": 4}


def test_lru_cache_keeps_the_most_recent_entries():
    cache: LRUCache[int] = LRUCache(2)
    calls = []

    def compute(v):
        calls.append(v)
        return v

    assert cache.get_or_compute("a", lambda: compute(1)) == 1
    assert cache.get_or_compute("b", lambda: compute(2)) == 2
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)  # evicts b
    assert "b" not in cache and "a" in cache and len(cache) == 2
    assert cache.get_or_compute("a", lambda: compute(9)) == 1 and calls == [1, 2]
    assert cache.get_or_compute("d", lambda: compute(4), store=False) == 4 and "d" not in cache
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None


def sources() -> dict:
    return {p.relative_to(PACKAGE).as_posix(): p.read_text() for p in PACKAGE.rglob("*.py")}


def test_one_home_per_convention():
    files = sources()

    def where(pattern: str):
        return sorted(name for name, text in files.items() if re.search(pattern, text))

    assert where(r"torch\.minimum\(t0, t1\)") == ["geometry.py"]  # slab ray-box intersection
    assert where(r"\+ 0\.5,\s*indexing=") == ["geometry.py"]  # pixel centres
    assert where(r"OrderedDict\(") == ["encoding/cache.py"]  # LRU caching
    assert where(r"PLANE_AXES = ") == ["triplane.py"]
    for name, text in files.items():
        if name.startswith(("models/", "fields/", "heads/", "encoding/")):
            assert "tnerf_ns.datamanagers" not in text, f"{name} imports the data managers"
        assert text.count("\n") <= 350, f"{name} is over 350 lines"
    assert files["models/tnerf_model.py"].count("\n") <= 310
