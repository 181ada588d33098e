"""An exponential moving average of the trainable weights, written into the model at the last training step.

The last iterate of a small-batch training carries the noise of its last few hundred batches; on out-of-domain data
(real scenes seen through a head trained on generated ones) that noise moves the prediction by a dB from one seed to
the next. The average over the last steps is a flatter point of the same run. It lives beside the optimiser, not in
the checkpoint: a resumed run restarts it from the loaded weights (within ``1 / (1 - decay)`` steps it has forgotten
the restart), and what ns-eval, ns-render and the exporters read is the averaged weights of the final checkpoint.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from torch import Tensor
from torch.nn import Parameter


class WeightAverage:
    """Shadow copies of ``params`` updated with ``decay`` after each step (a short warm-up lets the first steps
    count: the decay is ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates).

    Args:
        params: the trained parameters (the same objects the optimiser steps).
        decay: weight of the old average per update, in [0, 1).
    """

    def __init__(self, params: Sequence[Parameter], decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"weight average decay must lie in [0, 1), got {decay}")
        self.params: List[Parameter] = list(params)
        self.decay = decay
        self.updates = 0
        self.shadow: List[Tensor] = [p.detach().clone() for p in self.params]

    @property
    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

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


def weight_average_callbacks(
    params: Sequence[Parameter], decay: float, trainer: Optional[object]
) -> List[TrainingCallback]:
    """The training callback that keeps the average of ``params`` and writes it at the trainer's last step (none when
    ``decay`` is 0 or there is no trainer)."""
    if decay <= 0 or trainer is None:
        return []
    average = WeightAverage(params, decay)
    last_step = trainer._start_step + trainer.config.max_num_iterations - 1  # a resumed run counts from its start

    def after_step(step: int) -> None:
        average.update()
        if step == last_step:  # before the final evaluation and checkpoint
            average.write()

    return [TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], after_step)]
