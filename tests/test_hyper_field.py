"""Plan A's hyper-network and predicted-MLP field: shapes, initial scale, batching, gradients, and the model built with
``--pipeline.model.representation mlp`` / ``mlp-film`` (training step, fast path, dynamic encoder)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from tnerf_ns.fields.hyper_mlp_field import HyperMLPField
from tnerf_ns.heads.hyper_network import HyperNetwork

TOKEN_DIM, PATCH_START, LAYERS = 32, 5, (0, 1, 3, 3)


def tokens(views: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    layer = lambda: torch.randn(1, views, PATCH_START + 16, TOKEN_DIM, generator=g)  # noqa: E731
    aggregated = [layer(), layer(), None, layer()]
    c2w = torch.cat([torch.linalg.qr(torch.randn(views, 3, 3, generator=g))[0], torch.randn(views, 3, 1)], -1)
    return aggregated, c2w


def head_for(field: HyperMLPField, code_dim: int = 64) -> HyperNetwork:
    mean, std = field.prediction_init()
    return HyperNetwork(TOKEN_DIM, LAYERS, mean, std, code_dim)


@pytest.mark.parametrize("mode", ["full", "film"])
def test_output_shapes(mode):
    field = HyperMLPField(mode, hidden_dim=16, num_layers=2, position_frequencies=3, direction_levels=2)
    pe, d = 3 + 3 * 2 * 3, 4
    mlp = (pe * 16 + 16) + (16 * 16 + 16) + (16 + 1) + ((16 + d) * 8 + 8) + (8 * 3 + 3)
    assert field.num_mlp_params == mlp
    assert field.prediction_dim == (mlp if mode == "full" else 2 * (16 + 16 + 8))
    head = head_for(field)
    prediction = head(tokens()[0], PATCH_START, tokens()[1])
    assert prediction.shape == (field.prediction_dim,)
    density, rgb = field.decode(prediction, torch.rand(50, 3) * 2 - 1, torch.randn(50, 3))
    assert density.shape == (50, 1) and rgb.shape == (50, 3)
    assert (density >= 0).all() and ((rgb >= 0) & (rgb <= 1)).all()
    if mode == "full":
        assert sum(p.numel() for p in field.parameters()) == 0  # every weight of the MLP is predicted


def test_predicted_weights_start_with_the_statistics_of_nn_linear():
    """Over many scenes, each predicted layer's weights and biases have nn.Linear's default mean and spread."""
    torch.manual_seed(0)
    field = HyperMLPField("full", hidden_dim=64, num_layers=2, position_frequencies=6, direction_levels=3)
    head = head_for(field, code_dim=128)
    with torch.no_grad():
        predictions = torch.stack([head(tokens(seed=s)[0], PATCH_START, tokens(seed=s)[1]) for s in range(40)])
    for (weight, bias), (out_dim, in_dim) in zip(field.unflatten(predictions), field.layers):
        reference = nn.Linear(in_dim, out_dim)  # what a standard MLP would start with
        for predicted, standard in ((weight, reference.weight), (bias, reference.bias)):
            if predicted[0].numel() < 30:  # one or three numbers per scene (density and colour biases): no statistics
                continue
            target = 1 / math.sqrt(3 * in_dim)  # std of U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            assert abs(float(predicted.std()) / target - 1) < 0.15, (out_dim, in_dim, float(predicted.std()), target)
            assert abs(float(standard.detach().std()) / target - 1) < 0.5
            assert abs(float(predicted.mean())) < 0.25 * target + 0.02
        # the scenes differ (the prediction depends on the tokens), but only by part of the spread
        spread = float(weight.std(0).mean()) * math.sqrt(3 * in_dim)
        assert 0.3 < spread < 0.7


@pytest.mark.parametrize("mode", ["full", "film"])
def test_batched_decode_equals_a_loop_over_scenes(mode):
    torch.manual_seed(1)
    field = HyperMLPField(mode, hidden_dim=16, num_layers=3, position_frequencies=2, direction_levels=2)
    head = head_for(field)
    predictions = torch.stack([head(tokens(seed=s)[0], PATCH_START, tokens(seed=s)[1]) for s in range(4)])
    points, dirs = torch.rand(4, 100, 3) * 2 - 1, torch.randn(4, 100, 3)
    density, rgb = field.decode(predictions, points, dirs)
    for s in range(4):
        d_ref, c_ref = field.decode(predictions[s], points[s], dirs[s])
        torch.testing.assert_close(density[s], d_ref)
        torch.testing.assert_close(rgb[s], c_ref)
    # and by hand, layer by layer, for the full mode (the prediction really is the MLP)
    if mode == "full":
        layers = field.unflatten(predictions[:1])
        h = field.position_encoding(points[0])
        for k in range(field.num_trunk):
            h = torch.relu(h @ layers[k][0][0].T + layers[k][1][0])
        sigma = torch.exp(h @ layers[field.num_trunk][0][0].T + layers[field.num_trunk][1][0] - 1.0)
        torch.testing.assert_close(density[0], sigma, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["full", "film"])
def test_gradients_reach_the_head(mode):
    field = HyperMLPField(mode, hidden_dim=16, num_layers=2, position_frequencies=2, direction_levels=2)
    head = head_for(field)
    aggregated, c2w = tokens()
    density, rgb = field.decode(head(aggregated, PATCH_START, c2w), torch.rand(64, 3) * 2 - 1, torch.randn(64, 3))
    (density.mean() + rgb.mean()).backward()
    for name, p in list(head.named_parameters()) + list(field.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.fixture(scope="module")
def tiny(scenes):
    from helpers import tiny_config

    def build(representation: str, dynamic: bool = False):
        config = tiny_config(scenes)
        config.pipeline.model.representation = representation
        config.pipeline.model.hyper_code_dim = 32
        config.pipeline.model.compute_lpips = False
        if dynamic:
            from tnerf_ns.models.tnerf_dynamic_model import TNeRFDynamicModelConfig

            fields = {k: getattr(config.pipeline.model, k) for k in config.pipeline.model.__dataclass_fields__}
            fields.pop("_target")
            config.pipeline.model = TNeRFDynamicModelConfig(**fields)
        return config.pipeline.setup(device="cpu", test_mode="val")

    return build


@pytest.mark.parametrize("representation", ["mlp", "mlp-film"])
def test_model_trains_and_renders_with_a_predicted_mlp(tiny, representation):
    from tnerf_ns.encoding.hyper_encoder import HyperSceneEncoder

    pipeline = tiny(representation)
    model = pipeline.model
    assert isinstance(model.encoder, HyperSceneEncoder) and isinstance(model.field, HyperMLPField)
    assert not any(k.startswith(("encoder.latent_head.", "encoder.lifter.")) for k in model.state_dict())
    pipeline.train()
    _, loss_dict, _ = pipeline.get_train_loss_dict(0)
    assert {"rgb_loss", "point_opacity_loss"} <= set(loss_dict) and "triplane_tv" not in loss_dict
    total = sum(loss_dict.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.encoder.hyper_head.proj.grad.abs().sum() > 0
    groups = model.get_param_groups()["fields"]
    assert any(p is model.encoder.hyper_head.proj for p in groups)
    # evaluation: the occupancy fast path and the hierarchical reference render the same prediction
    pipeline.eval()
    camera = pipeline.datamanager.eval_dataset.cameras[0:1]
    with torch.no_grad():
        fast = model.get_outputs_for_camera(camera)
        model.config.eval_sampler = "hierarchical"
        reference = model.get_outputs_for_camera(camera)
        model.config.eval_sampler = "occupancy"
    assert fast["rgb"].shape == reference["rgb"].shape and torch.isfinite(fast["rgb"]).all()


def test_triplane_checkpoint_keys_are_unchanged(tiny):
    keys = set(tiny("triplane").model.state_dict())
    assert "field.trunk_in.weight" in keys and "encoder.lifter.refine_in.weight" in keys
    assert not any("hyper" in k for k in keys)


def test_dynamic_encoder_feeds_the_hyper_network(tiny):
    from tnerf_ns.encoding.hyper_encoder import HyperDynamicSceneEncoder

    model = tiny("mlp", dynamic=True).model
    assert isinstance(model.encoder, HyperDynamicSceneEncoder)
    model.eval()
    static = model.context_for_camera(model.context_provider.entry(0).dataset.cameras[0:1])
    # the same cameras at t1 see other photos: the prediction moves with the interpolation time
    ctx0 = replace(static, images_t1=static.images.flip(-1), time=0.0)
    ctx1 = replace(static, images_t1=static.images.flip(-1), time=1.0)
    with torch.no_grad():
        p0, p1, p_static = model.encoder(ctx0)[0], model.encoder(ctx1)[0], model.encoder(static)[0]
    assert p0.shape == (model.field.prediction_dim,) and torch.isfinite(p1).all()
    assert not torch.allclose(p0, p1)
    torch.testing.assert_close(p0, p_static, rtol=1e-4, atol=1e-5)  # t0 is the t0 photos
