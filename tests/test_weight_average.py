"""The moving average of the trained weights: its arithmetic, that a training's final checkpoint holds it, and that
a run split with --schedule-steps keeps the last iterate and hands the average on in its checkpoint."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_config
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation

from tnerf_ns.models.weight_average import WeightAverage, weight_average_callbacks


def manual_average(values, decay):
    average = values[0]
    for n, v in enumerate(values[1:]):
        d = min(decay, (1 + n) / (10 + n))
        average = d * average + (1 - d) * v
    return average


def test_the_average_follows_the_warm_up_and_decay_and_is_written_at_the_end():
    p = torch.nn.Parameter(torch.zeros(3))
    average = WeightAverage([("p", p)], decay=0.9)
    values = [torch.zeros(3)]
    for step in range(100):
        with torch.no_grad():
            p.copy_(torch.full((3,), float(step + 1)))
        values.append(p.detach().clone())
        average.update()
    assert average.current_decay == 0.9
    torch.testing.assert_close(average.shadow[0], manual_average(values, 0.9))
    assert not torch.equal(p.detach(), average.shadow[0])
    average.write()
    torch.testing.assert_close(p.detach(), manual_average(values, 0.9))


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_a_decay_outside_zero_one_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage([("p", torch.nn.Parameter(torch.zeros(1)))], decay)


def test_the_final_checkpoint_holds_the_average_of_the_steps(scenes, tmp_path):
    config = tiny_config(scenes)
    config.max_num_iterations = 5
    config.output_dir, config.vis = tmp_path, "tensorboard"
    config.pipeline.model.weight_average_decay = 0.5
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = 1000
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    model = trainer.pipeline.model
    name, param = next((n, p) for n, p in model.named_parameters() if p.requires_grad and "density_head" in n)
    seen = [param.detach().clone()]
    record = TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], lambda step: seen.append(
        param.detach().clone()))  # fmt: skip
    trainer.callbacks.insert(0, record)  # the optimiser's result of each step, before the average reads it
    trainer.train()
    checkpoint = torch.load(next((trainer.checkpoint_dir).glob("step-*.ckpt")), weights_only=True)
    saved = checkpoint["pipeline"][f"_model.{name}"]
    assert len(seen) == 6
    torch.testing.assert_close(saved, manual_average(seen, 0.5))
    assert not torch.allclose(saved, seen[-1])  # not the last iterate
    assert int(checkpoint["pipeline"]["weight_average.updates"]) == 5  # the average travels with the checkpoint
    shadow = checkpoint["pipeline"]["weight_average.shadow__" + name.replace(".", "__")]
    torch.testing.assert_close(shadow, saved)


class _Trainer:
    def __init__(self, start: int, steps: int, schedule_steps) -> None:
        self._start_step = start
        self.config = type("C", (), {"max_num_iterations": steps, "schedule_steps": schedule_steps})()


@pytest.mark.parametrize(
    "start, steps, schedule_steps, written",
    [(0, 4, None, True), (0, 4, 8, False), (4, 4, 8, True), (0, 4, 4, True), (0, 8, 4, True)],
)
def test_the_average_is_written_only_where_the_whole_run_ends(start, steps, schedule_steps, written):
    p = torch.nn.Parameter(torch.zeros(2))
    average = WeightAverage([("p", p)], decay=0.5)
    average.updates.fill_(start)  # a resumed run's average arrives with its count
    (callback,) = weight_average_callbacks(average, _Trainer(start, steps, schedule_steps))
    for step in range(start, start + steps):
        with torch.no_grad():
            p.fill_(float(step + 1))
        callback.run_callback_at_location(step, TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
    assert int(average.updates) == start + steps
    assert (float(p[0]) != start + steps) == written  # written: the average, below the last iterate


def test_a_fresh_average_starts_from_the_loaded_weights():
    p = torch.nn.Parameter(torch.zeros(2))
    average = WeightAverage([("p", p)], decay=0.5)
    with torch.no_grad():
        p.fill_(3.0)  # e.g. weights loaded from a checkpoint saved without an average
    weight_average_callbacks(average, _Trainer(0, 2, None))
    torch.testing.assert_close(average.shadow[0], torch.full((2,), 3.0))
