"""Caching in one place: :class:`LRUCache` (every in-memory cache of the package) and :class:`BackboneOutputCache`
(frozen-backbone outputs on disk, shared by runs and by every rank of a distributed run).

With a frozen backbone, the aggregated tokens of a source set never change, and they are the expensive part of a
training step (VGGT-1B: seconds per set on a GPU). Entries are keyed by *content*: a fingerprint of the backbone's
weights and configuration, the layers kept, and the exact input pixels. A changed photo, image size, view choice or
weight therefore gives a new key — a stale entry can never be served, it is simply not found again (and is evicted
by age once the cache is over its size limit).

Files are ``<key>.safetensors``, written to a temporary name and renamed, so concurrent writers (ranks sharing a
folder) and interrupted runs never leave a half-written entry under a real name. An unreadable or mismatching entry
is reported, deleted and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Generic, Hashable, List, Optional, Sequence, TypeVar

import torch
from rich.console import Console
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

CONSOLE = Console(width=120)
FORMAT = "1"
STALE_PARTIAL_SECONDS = 3600.0


V = TypeVar("V")


class LRUCache(Generic[V]):
    """A bounded in-memory map that forgets its least recently used entries beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self._entries: "OrderedDict[Hashable, V]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> Optional[V]:
        """The value (now most recently used), or None."""
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: Hashable, value: V) -> V:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return value

    def get_or_compute(self, key: Hashable, compute: Callable[[], V], store: bool = True) -> V:
        """The cached value, or ``compute()`` (kept for next time unless ``store`` is False)."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = compute()
        return self.put(key, value) if store else value

    def clear(self) -> None:
        self._entries.clear()


def weights_fingerprint(module: nn.Module, extra: str = "") -> str:
    """A content hash of a module's parameters and buffers (names, shapes, dtypes, sums and a strided sample of
    values): cheap even for VGGT-1B, and different for any realistically different weights."""
    digest = hashlib.sha256(extra.encode())
    with torch.no_grad():
        for name, tensor in list(module.state_dict().items()):
            flat = tensor.detach().reshape(-1)
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
            if flat.numel() == 0:
                continue
            values = flat.double()
            stride = max(1, flat.numel() // 1024)
            summary = torch.cat([values.sum()[None], values.abs().sum()[None], values[::stride]])
            digest.update(summary.cpu().numpy().tobytes())
    return digest.hexdigest()


class BackboneOutputCache:
    """Aggregator outputs on disk, keyed by backbone fingerprint, layers and input pixels.

    Args:
        directory: cache folder (created; may be shared between runs and ranks).
        fingerprint: :func:`weights_fingerprint` of the frozen backbone.
        max_bytes: total size kept; the least recently used entries beyond it are deleted.
    """

    def __init__(self, directory: Path, fingerprint: str, max_bytes: int) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(f"{self.directory}: cannot create the backbone cache folder ({err})") from err
        self.fingerprint = fingerprint
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0

    def key(self, images: Tensor, layers: Sequence[int]) -> str:
        digest = hashlib.sha256(f"{FORMAT}|{self.fingerprint}|{list(layers)}|{tuple(images.shape)}".encode())
        digest.update(images.detach().float().contiguous().cpu().numpy().tobytes())
        return digest.hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    def get_or_compute(
        self, images: Tensor, layers: Sequence[int], compute: Callable[[], List[Optional[Tensor]]]
    ) -> List[Optional[Tensor]]:
        """The cached outputs for these pixels, or ``compute()`` (stored for next time)."""
        key = self.key(images, layers)
        value = self.load(key, images.device)
        if value is not None:
            self.hits += 1
            return value
        self.misses += 1
        value = compute()
        self.save(key, value)
        return value

    def load(self, key: str, device: torch.device) -> Optional[List[Optional[Tensor]]]:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                if meta.get("fingerprint") != self.fingerprint or meta.get("format") != FORMAT:
                    raise ValueError("written for other backbone weights or another cache format")
                present = json.loads(meta["present"])
                # copied out of the memory map: the entry may be evicted or replaced while the tensors are in use
                value = [
                    self._copy(f.get_tensor(f"layer_{i}"), device) if keep else None for i, keep in enumerate(present)
                ]
        except FileNotFoundError:  # evicted by another rank meanwhile
            return None
        except Exception as err:
            CONSOLE.print(f"[yellow]Backbone cache entry {path} is unusable ({err}); recomputing it")
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # recently used: evicted last
        return value

    @staticmethod
    def _copy(tensor: Tensor, device: torch.device) -> Tensor:
        return tensor.to(device) if torch.device(device).type != "cpu" else tensor.clone()

    def save(self, key: str, value: List[Optional[Tensor]]) -> None:
        tensors = {f"layer_{i}": t.detach().contiguous().cpu() for i, t in enumerate(value) if t is not None}
        meta = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "present": json.dumps([t is not None for t in value]),
        }
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".partial")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, self.path(key))
        except OSError as err:  # a full or read-only disk costs speed, not the run
            CONSOLE.print(f"[yellow]Cannot write backbone cache entry in {self.directory} ({err}); continuing without")
            Path(tmp).unlink(missing_ok=True)
            return
        self.evict()

    def evict(self) -> None:
        """Delete the least recently used entries until the folder is within ``max_bytes`` (and partial files that
        a killed run left behind)."""
        now = time.time()
        for partial in self.directory.glob(".tmp-*.partial"):
            try:
                if now - partial.stat().st_mtime > STALE_PARTIAL_SECONDS:
                    partial.unlink(missing_ok=True)
            except FileNotFoundError:
                continue
        entries = []
        for path in self.directory.glob("*.safetensors"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
