"""The T-NeRF methods registered with nerfstudio: ``tnerf`` and ``tnerf-dynamic``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Type

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig, Optimizers
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from tnerf_ns.data.multiscene_dataparser import TNeRFScenesDataParserConfig
from tnerf_ns.datamanagers.tnerf_datamanager import TNeRFDataManagerConfig
from tnerf_ns.models.tnerf_dynamic_model import TNeRFDynamicModelConfig
from tnerf_ns.models.tnerf_model import TNeRFModelConfig
from tnerf_ns.pipeline import TNeRFPipelineConfig


class TNeRFTrainer(Trainer):
    """nerfstudio's trainer, with learning-rate schedules that follow the run's length."""

    config: "TNeRFTrainerConfig"

    def setup_optimizers(self) -> Optimizers:
        steps = max(1, self.config.schedule_steps or self.config.max_num_iterations)
        for group in self.config.optimizers.values():
            scheduler = group.get("scheduler")
            if scheduler is not None and hasattr(scheduler, "max_steps"):
                scheduler.max_steps = steps
        return super().setup_optimizers()


@dataclass
class TNeRFTrainerConfig(TrainerConfig):
    """Trainer configuration of the T-NeRF methods."""

    _target: Type = field(default_factory=lambda: TNeRFTrainer)
    schedule_steps: Optional[int] = None
    """Steps over which every learning rate decays to its final value. None: this invocation's --max-num-iterations
    (a short run decays fully, a long one slowly); pass the total when a run is split and resumed with --load-dir."""


def _optimizers(lr: float, max_steps: int) -> dict:
    def group(scale: float) -> dict:
        return {
            "optimizer": AdamOptimizerConfig(lr=lr * scale, eps=1e-8, max_norm=1.0),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=lr * scale * 0.1, max_steps=max_steps),
        }

    return {"fields": group(1.0), "backbone": group(0.25)}


def tnerf_trainer_config() -> TrainerConfig:
    """Default ``tnerf`` configuration: small backbone (offline-friendly), multi-scene data."""
    max_steps = 30000
    return TNeRFTrainerConfig(
        method_name="tnerf",
        steps_per_eval_batch=500,
        steps_per_eval_image=500,
        steps_per_save=1000,
        max_num_iterations=max_steps,
        mixed_precision=False,
        pipeline=TNeRFPipelineConfig(
            datamanager=TNeRFDataManagerConfig(dataparser=TNeRFScenesDataParserConfig()),
            model=TNeRFModelConfig(eval_num_rays_per_chunk=4096),
        ),
        optimizers=_optimizers(1e-3, max_steps),
        viewer=ViewerConfig(num_rays_per_chunk=4096),
        vis="tensorboard",
    )


tnerf_method = MethodSpecification(
    config=tnerf_trainer_config(),
    description="T-NeRF: feed-forward tri-plane radiance fields from a frozen VGGT backbone",
)


def tnerf_dynamic_trainer_config() -> TrainerConfig:
    """Default ``tnerf-dynamic`` configuration: dynamic multi-scene data, flow token interpolation."""
    config = tnerf_trainer_config()
    config.method_name = "tnerf-dynamic"
    config.pipeline = TNeRFPipelineConfig(
        datamanager=TNeRFDataManagerConfig(dataparser=TNeRFScenesDataParserConfig()),
        model=TNeRFDynamicModelConfig(eval_num_rays_per_chunk=4096),
    )
    return config


tnerf_dynamic_method = MethodSpecification(
    config=tnerf_dynamic_trainer_config(),
    description="T-NeRF dynamic: any moment between two photo groups by VGGT patch-token interpolation",
)


TINY_SETTINGS = {
    "pipeline.model.backbone": "vggt-small",
    # random init, trained with the head (not the shipped pre-trained weights, which are frozen and cached)
    "pipeline.model.backbone_weights": None,
    "pipeline.model.triplane_resolution": 16,
    "pipeline.model.triplane_channels": 8,
    "pipeline.model.feature_dim": 8,
    "pipeline.model.num_coarse_samples": 8,
    "pipeline.model.num_fine_samples": 8,
    "pipeline.model.backbone_image_width": 42,
    "pipeline.datamanager.train_num_rays_per_batch": 64,
    "pipeline.datamanager.num_query_points": 64,
}
"""The smallest useful T-NeRF (seconds per run on a CPU): the test suite, dry runs and the equivalence check."""


def apply_tiny_settings(config: TrainerConfig) -> TrainerConfig:
    """Set :data:`TINY_SETTINGS` on a trainer configuration (in place)."""
    for path, value in TINY_SETTINGS.items():
        *parents, name = path.split(".")
        target = config
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return config


def tiny_settings_flags() -> list:
    """:data:`TINY_SETTINGS` as ``ns-train`` flags."""
    return [arg for path, value in TINY_SETTINGS.items() for arg in ("--" + path.replace("_", "-"), str(value))]
