"""Source views -> tri-plane: the static and dynamic scene encoders and the caches they use."""

from tnerf_ns.encoding.cache import BackboneOutputCache, LRUCache, weights_fingerprint
from tnerf_ns.encoding.dynamic_encoder import DynamicSceneEncoder
from tnerf_ns.encoding.encoder import PLANE_CACHE_SIZE, SceneEncoder

__all__ = [
    "PLANE_CACHE_SIZE",
    "BackboneOutputCache",
    "DynamicSceneEncoder",
    "LRUCache",
    "SceneEncoder",
    "weights_fingerprint",
]
