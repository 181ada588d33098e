"""Pipeline glue: builds the model with the data manager's context provider (so that evaluation, rendering and the
viewer, which pass only cameras, produce real images) and hands each batch's scene context to the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Type

import torch
import torch.distributed as dist
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes
from nerfstudio.pipelines.base_pipeline import Pipeline, VanillaPipeline, VanillaPipelineConfig
from torch import Tensor
from torch.cuda.amp.grad_scaler import GradScaler
from torch.nn.parallel import DistributedDataParallel as DDP

from tnerf_ns.compat import apply_nerfstudio_patches, blender_box_follows_scale_factor
from tnerf_ns.datamanagers.tnerf_datamanager import TNeRFDataManager, TNeRFDataManagerConfig
from tnerf_ns.models.tnerf_model import TNeRFModelConfig
from tnerf_ns.models.weight_average import WeightAverage, weight_average_callbacks


@dataclass
class TNeRFPipelineConfig(VanillaPipelineConfig):
    """T-NeRF pipeline: scene contexts flow from the data manager to the model."""

    _target: Type = field(default_factory=lambda: TNeRFPipeline)
    datamanager: TNeRFDataManagerConfig = field(default_factory=TNeRFDataManagerConfig)
    """Data manager (one scene per step)."""
    model: TNeRFModelConfig = field(default_factory=TNeRFModelConfig)
    """T-NeRF model."""
    thread_invariant_numerics: bool = False
    """Make a CPU run's floats independent of the host's thread count: one intra-op thread and no oneDNN kernels.
    PyTorch's oneDNN convolutions and its vectorised element-wise loops (whose scalar tails fall where the work is
    split between threads) round differently with 1 and 2 threads, and training amplifies those last bits into
    different weights (docs/results.md, Reproducibility; ``scripts/thread_determinism.py`` finds the first op that
    differs). On: the same seed gives bit-identical weights whatever OMP_NUM_THREADS is, at about 1.6x the time on
    2 cores. CUDA kernels are unaffected; other CPUs (other vector widths) may still round differently."""


apply_nerfstudio_patches()


class NonFiniteLossError(FloatingPointError):
    """Training produced NaN/Inf; the run stops before the bad step is applied or saved."""


def check_finite(step: int, loss_dict: Dict[str, Tensor], scene: str) -> None:
    """Stop with the step, scene and every loss term when a loss is not finite (checkpoints so far stay good)."""
    bad = {k: float(v) for k, v in loss_dict.items() if not torch.isfinite(v).all()}
    if bad:
        terms = ", ".join(f"{k}={float(v):.4g}" for k, v in loss_dict.items())
        raise NonFiniteLossError(
            f"non-finite loss at step {step} (scene {scene}): {sorted(bad)} ; all terms: {terms}. The optimiser step "
            "was not taken; the last saved checkpoint is from before it. Lower the learning rate or resume from it."
        )


def use_thread_invariant_numerics() -> None:
    """One intra-op CPU thread and PyTorch's own convolutions instead of oneDNN's (see
    ``TNeRFPipelineConfig.thread_invariant_numerics``)."""
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False


class NoEvalImagesError(ValueError):
    """The data has no evaluation images (nerfstudio then sets up no evaluation loaders)."""


class TNeRFPipeline(VanillaPipeline):
    """See :class:`TNeRFPipelineConfig`."""

    config: TNeRFPipelineConfig

    def __init__(
        self,
        config: TNeRFPipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: Optional[GradScaler] = None,
    ) -> None:
        # VanillaPipeline.__init__ would build the model without the context provider, and wraps it in DDP with
        # device_ids=[rank], which torch refuses for CPU modules: build both here (gloo on CPU, NCCL on CUDA)
        Pipeline.__init__(self)
        self.config = config
        if config.thread_invariant_numerics:
            use_thread_invariant_numerics()
        self.test_mode = test_mode
        self.datamanager: TNeRFDataManager = config.datamanager.setup(
            device=device, test_mode=test_mode, world_size=world_size, local_rank=local_rank
        )
        self.datamanager.to(device)
        train_dataset = self.datamanager.train_dataset
        self._model = config.model.setup(
            scene_box=blender_box_follows_scale_factor(config.datamanager.dataparser, train_dataset.scene_box),
            num_train_data=len(train_dataset),
            metadata=train_dataset.metadata,
            device=device,
            grad_scaler=grad_scaler,
            context_provider=self.datamanager.context_provider,
            # one scene: starts from the shipped head (when there is one), in the box placed on a capture
            scene_mode=getattr(self.datamanager, "scene_mode", False),
            placement=getattr(self.datamanager, "placement", None),
            run_checkpoint_follows=test_mode != "val",  # eval_setup: a missing --pipeline.model.pretrained is fine
        )
        self.model.to(device)
        self.weight_average = self._weight_average() if test_mode == "val" else None  # training only
        self.world_size = world_size
        self.datamanager.shard(local_rank, world_size)
        if world_size > 1:
            on_cuda = torch.device(device).type == "cuda"
            self._model = DDP(self._model, device_ids=[local_rank] if on_cuda else None, find_unused_parameters=True)
            dist.barrier()

    def _weight_average(self) -> Optional[WeightAverage]:
        """The moving average of the trained weights (a module, so that checkpoints carry it); none in scene mode,
        whose refinement is judged at its intermediate checkpoints (60 / 180 / 600 s) and keeps the last iterate."""
        decay = self.model.config.weight_average_decay
        if decay <= 0 or getattr(self.datamanager, "scene_mode", False):
            return None
        trained = {id(p) for group in self.model.get_param_groups().values() for p in group}
        return WeightAverage([(n, p) for n, p in self.model.named_parameters() if id(p) in trained], decay)

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> List[TrainingCallback]:
        average = weight_average_callbacks(self.weight_average, training_callback_attributes.trainer)
        return super().get_training_callbacks(training_callback_attributes) + average

    def get_train_loss_dict(self, step: int):
        # sample jitter etc. draw from torch's global generator: make it a function of (step, rank) too, so that a
        # run resumed from a checkpoint continues exactly as the uninterrupted run would
        torch.manual_seed(
            2_000_003 * step + 7_919 * self.datamanager.local_rank_ + 42 + 15_485_863 * self.datamanager.run_seed
        )
        ray_bundle, batch = self.datamanager.next_train(step)
        model_outputs = self._model(ray_bundle, context=batch["context"])
        metrics_dict = self.model.get_metrics_dict(model_outputs, batch)
        loss_dict = self.model.get_loss_dict(model_outputs, batch, metrics_dict)
        check_finite(step, loss_dict, batch["context"].name)
        return model_outputs, loss_dict, metrics_dict

    def get_average_eval_image_metrics(
        self, step: Optional[int] = None, output_path: Optional[Path] = None, get_std: bool = False
    ):
        """nerfstudio's, but data without evaluation images gets a message saying what to change."""
        if not len(self.datamanager.eval_dataset):
            raise NoEvalImagesError(
                f"{self.datamanager.config.data}: no evaluation images: the eval split is empty or holds only source "
                "views. nerfstudio-data's default --eval-mode fraction leaves a small dataset none; train with "
                "`nerfstudio-data --eval-mode interval --eval-interval 2` (or `--eval-mode all`) to score it"
            )
        return super().get_average_eval_image_metrics(step, output_path, get_std)

    def get_eval_loss_dict(self, step: int):
        self.eval()
        ray_bundle, batch = self.datamanager.next_eval(step)
        with torch.no_grad():
            model_outputs = self.model(ray_bundle, context=batch["context"])
        metrics_dict = self.model.get_metrics_dict(model_outputs, batch)
        loss_dict = self.model.get_loss_dict(model_outputs, batch, metrics_dict)
        self.train()
        return model_outputs, loss_dict, metrics_dict
