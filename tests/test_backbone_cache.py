"""On-disk cache of frozen-backbone outputs: content keys, stale and corrupt entries, eviction, use by the model."""

from __future__ import annotations

import os
import time

import pytest
import torch
from test_robustness import small_scenes, tiny_pipeline  # noqa: F401  (fixture)

from tnerf_ns.backbone import build_vggt
from tnerf_ns.encoding.cache import BackboneOutputCache, weights_fingerprint


@pytest.fixture(scope="module")
def vggt():
    torch.manual_seed(0)
    return build_vggt("vggt-small").eval()


def counted(vggt, images, layers, calls):
    def compute():
        calls.append(1)
        with torch.no_grad():
            return vggt.aggregate(images[None], layers)

    return compute


def test_entries_round_trip_and_are_keyed_by_pixels(vggt, tmp_path):
    cache = BackboneOutputCache(tmp_path, weights_fingerprint(vggt), 2**30)
    layers = vggt.config.intermediate_layer_idx
    images = torch.rand(2, 3, 28, 42)
    calls = []
    first = cache.get_or_compute(images, layers, counted(vggt, images, layers, calls))
    again = cache.get_or_compute(images, layers, counted(vggt, images, layers, calls))
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    assert len(first) == len(again) == vggt.config.depth
    for a, b in zip(first, again):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b)
    assert sum(t is not None for t in again) == len(set(layers))
    other = images.clone()
    other[0, 0, 0, 0] += 1e-3  # one changed pixel: a new entry, never the old one
    cache.get_or_compute(other, layers, counted(vggt, other, layers, calls))
    assert len(calls) == 2 and len(list(tmp_path.glob("*.safetensors"))) == 2


def test_other_weights_never_read_old_entries(vggt, tmp_path):
    layers = vggt.config.intermediate_layer_idx
    images = torch.rand(2, 3, 28, 28)
    fingerprint = weights_fingerprint(vggt)
    BackboneOutputCache(tmp_path, fingerprint, 2**30).get_or_compute(images, layers, counted(vggt, images, layers, []))
    changed = build_vggt("vggt-small").eval()
    changed.load_state_dict(vggt.state_dict())
    assert weights_fingerprint(changed) == fingerprint
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-4
    assert weights_fingerprint(changed) != fingerprint
    calls = []
    BackboneOutputCache(tmp_path, weights_fingerprint(changed), 2**30).get_or_compute(
        images, layers, counted(changed, images, layers, calls)
    )
    assert calls == [1]
    # an entry renamed under another key (or written for other weights) is refused by its recorded fingerprint
    cache = BackboneOutputCache(tmp_path, "someone-else", 2**30)
    key = cache.key(images, layers)
    os.replace(next(tmp_path.glob("*.safetensors")), cache.path(key))
    assert cache.load(key, torch.device("cpu")) is None and not cache.path(key).exists()


def test_corrupt_entries_are_recomputed(vggt, tmp_path, capsys):
    cache = BackboneOutputCache(tmp_path, weights_fingerprint(vggt), 2**30)
    layers = vggt.config.intermediate_layer_idx
    images = torch.rand(1, 3, 28, 28)
    reference = cache.get_or_compute(images, layers, counted(vggt, images, layers, []))
    path = cache.path(cache.key(images, layers))
    path.write_bytes(path.read_bytes()[:100])  # truncated, as after a crash outside the cache's atomic write
    calls = []
    value = cache.get_or_compute(images, layers, counted(vggt, images, layers, calls))
    assert calls == [1] and "unusable" in capsys.readouterr().out
    assert all(a is None or torch.equal(a, b) for a, b in zip(reference, value))
    assert cache.load(cache.key(images, layers), torch.device("cpu")) is not None  # rewritten, readable again


def test_size_limit_evicts_least_recently_used(vggt, tmp_path):
    layers = vggt.config.intermediate_layer_idx
    cache = BackboneOutputCache(tmp_path, weights_fingerprint(vggt), 2**30)
    batches = [torch.rand(1, 3, 28, 28) for _ in range(3)]
    for i, images in enumerate(batches):
        cache.get_or_compute(images, layers, counted(vggt, images, layers, []))
        os.utime(cache.path(cache.key(images, layers)), (time.time() - 100 + i, time.time() - 100 + i))
    size = cache.path(cache.key(batches[0], layers)).stat().st_size
    stale = tmp_path / ".tmp-killed.partial"
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))
    cache.load(cache.key(batches[0], layers), torch.device("cpu"))  # used now: kept
    cache.max_bytes = 2 * size
    cache.evict()
    kept = {p.name for p in tmp_path.glob("*.safetensors")}
    assert kept == {cache.path(cache.key(b, layers)).name for b in (batches[0], batches[2])}
    assert not stale.exists()


def test_frozen_model_reuses_the_disk_cache_across_runs(small_scenes, tmp_path):  # noqa: F811
    def pipeline():
        cfg = tiny_pipeline(small_scenes, train_num_rays_per_batch=16, num_query_points=8)
        cfg.model.train_backbone = False
        cfg.model.backbone_cache_dir = tmp_path / "cache"
        return cfg.setup(device="cpu")

    first = pipeline()
    first.train()
    _, loss_first, _ = first.get_train_loss_dict(0)
    assert first.model.encoder.disk_cache.misses >= 1 and list((tmp_path / "cache").glob("*.safetensors"))
    second = pipeline()  # a new run: other random weights until the first run's are loaded
    second.model.load_state_dict(first.model.state_dict())
    second.train()
    _, loss_second, _ = second.get_train_loss_dict(0)
    cache = second.model.encoder.disk_cache
    assert cache.hits >= 1 and cache.misses == 0
    for key, value in loss_first.items():
        assert torch.allclose(value, loss_second[key]), key
