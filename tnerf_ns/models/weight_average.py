"""An exponential moving average of the trainable weights, written into the model at the end of the training.

The last iterate of a small-batch training carries the noise of its last few hundred batches; on out-of-domain data
(real scenes seen through a head trained on generated ones) that noise moves the prediction by a dB from one seed to
the next. The average over the last steps is a flatter point of the same run. It is saved with every checkpoint (as
buffers of the pipeline, ``weight_average.*``), so a run stopped and resumed with ``--load-dir`` ends exactly where the
uninterrupted run does; what ns-eval, ns-render and the exporters read is the averaged weights of the final checkpoint.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from torch import Tensor, nn
from torch.nn import Parameter


class WeightAverage(nn.Module):
    """Shadow copies of the named parameters, updated with ``decay`` after each step (a short warm-up lets the first
    steps count: the decay is ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates). The shadows and ``n`` are
    buffers, so they travel in the checkpoint; the parameters themselves are not registered here.

    Args:
        named_params: the trained parameters with their names in the model (the same objects the optimiser steps).
        decay: weight of the old average per update, in [0, 1).
    """

    def __init__(self, named_params: Sequence[Tuple[str, Parameter]], decay: float) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"weight average decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.params: List[Parameter] = [p for _, p in named_params]  # a plain list: not this module's parameters
        self.names = ["shadow__" + name.replace(".", "__") for name, _ in named_params]
        for name, p in zip(self.names, self.params):
            self.register_buffer(name, p.detach().clone())
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @property
    def shadow(self) -> List[Tensor]:
        return [getattr(self, name) for name in self.names]

    @property
    def current_decay(self) -> float:
        n = int(self.updates)
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def reset(self) -> None:
        """Restart the average from the parameters' current values (e.g. weights loaded from a checkpoint without one)."""
        for s, p in zip(self.shadow, self.params):
            s.copy_(p.detach())
        self.updates.zero_()

    @torch.no_grad()
    def update(self) -> None:
        """Blend the parameters' current values into the average."""
        weight = 1.0 - self.current_decay
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], weight)
        self.updates += 1

    @torch.no_grad()
    def write(self) -> None:
        """Replace the parameters' values by the average (the optimiser's state is left as it is)."""
        for p, s in zip(self.params, self.shadow):
            p.copy_(s)


def weight_average_callbacks(average: Optional[WeightAverage], trainer: Optional[object]) -> List[TrainingCallback]:
    """The training callback that keeps ``average`` and writes it into the model at the training's end (none without
    an average or a trainer). The end is this invocation's last step, unless ``--schedule-steps`` says the run goes on
    (a part to be resumed with ``--load-dir``): then the weights stay the last iterate and the checkpoint carries the
    average to the next part."""
    if average is None or trainer is None:
        return []
    if int(average.updates) == 0:  # a fresh run, or a checkpoint saved without an average: start from the weights
        average.reset()
    last_step = trainer._start_step + trainer.config.max_num_iterations - 1  # a resumed run counts from its start
    schedule_steps = getattr(trainer.config, "schedule_steps", None)
    write_at = last_step if schedule_steps is None or last_step >= schedule_steps - 1 else None

    def after_step(step: int) -> None:
        average.update()
        if step == write_at:  # before the final evaluation and checkpoint
            average.write()

    return [TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], after_step)]
