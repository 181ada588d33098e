"""Plan A's encoders: source views -> the parameters of the scene's MLP (``--pipeline.model.representation mlp`` or
``mlp-film``), for static scenes and for ``tnerf-dynamic`` (the interpolated tokens feed the hyper-network exactly as
they feed the LatentHead).

They are the tri-plane encoders with the head swapped: backbone ownership, resizing, the token budget, aggregation
and every cache stay those of :class:`~tnerf_ns.encoding.encoder.SceneEncoder`; the LatentHead and the lifting are
replaced by :class:`~tnerf_ns.heads.hyper_network.HyperNetwork`, which reads the same aggregator layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Tuple

from jaxtyping import Float
from torch import Tensor, nn

from tnerf_ns.encoding.dynamic_encoder import DynamicSceneEncoder
from tnerf_ns.encoding.encoder import SceneEncoder
from tnerf_ns.fields.hyper_mlp_field import HyperMLPField
from tnerf_ns.geometry import CanonicalBox
from tnerf_ns.heads.hyper_network import HyperNetwork
from tnerf_ns.scene_context import SceneContext

if TYPE_CHECKING:
    from tnerf_ns.models.tnerf_model import TNeRFModelConfig


class LayersRead(nn.Module):
    """Parameter-free stand-in for the LatentHead where the encoder asks which aggregator layers to keep."""

    def __init__(self, layers: Tuple[int, ...]) -> None:
        super().__init__()
        self.layers = tuple(layers)


def make_hyper_field(config: "TNeRFModelConfig") -> HyperMLPField:
    """The predicted-MLP field the configuration describes (``mlp``: full weights, ``mlp-film``: FiLM)."""
    return HyperMLPField(
        "film" if config.representation == "mlp-film" else "full",
        config.mlp_width,
        config.mlp_layers,
        config.hyper_position_frequencies,
        config.direction_levels,
    )


class HyperEncoderMixin:
    """Swaps the tri-plane head of a scene encoder for the hyper-network (see the module docstring)."""

    def __init__(self, config: "TNeRFModelConfig", box: CanonicalBox) -> None:
        super().__init__(config, box)  # type: ignore[call-arg]
        layers = self.latent_head.layers
        del self.latent_head, self.lifter  # the tri-plane's head, lifting and projection branch have no part here
        self.view_features = None
        self.latent_head = LayersRead(layers)
        mean, std = make_hyper_field(config).prediction_init()
        self.hyper_head = HyperNetwork(self.vggt.config.head_dim_in, layers, mean, std, config.hyper_code_dim)

    def trainable_parameters(self) -> List[nn.Parameter]:
        return list(self.hyper_head.parameters())

    def head_and_lift(
        self,
        aggregated: List[Optional[Tensor]],
        images: Tensor,
        intrinsics: Tensor,
        ctx: SceneContext,
        colours: Optional[Tensor] = None,
    ) -> Tuple[Float[Tensor, "d"], None]:
        """The hyper-network on the aggregated layers: the scene's MLP parameters (nothing is lifted)."""
        c2w = self.box.cameras_to_canonical(ctx.c2w.to(self.device))
        return self.hyper_head(aggregated, self.vggt.patch_start_idx, c2w), None


class HyperSceneEncoder(HyperEncoderMixin, SceneEncoder):
    """Source views of one scene -> the parameters of its MLP."""


class HyperDynamicSceneEncoder(HyperEncoderMixin, DynamicSceneEncoder):
    """Source views at t0 and t1 -> the parameters of the MLP at time t (tokens interpolated as for the tri-plane)."""
