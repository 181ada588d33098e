"""Synthetic scene generator: NeRF-MAE format, determinism, variety, dynamic states."""

from __future__ import annotations

import numpy as np

from tnerf_ns.scenes.nerfmae import CULLED
from tnerf_ns.scenes.synthetic import generate_scene, grid_resolution, sample_scene, scene_statistics


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = generate_scene(1, 0, "object", False, 24)[0]
    b = generate_scene(1, 0, "object", False, 24)[0]
    c = generate_scene(2, 0, "object", False, 24)[0]
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.raw_density, b.raw_density)
    assert not np.array_equal(a.raw_density, c.raw_density)


def test_resolution_rule_and_ngp_encoding():
    assert grid_resolution(np.array([5.0, 4.0, 2.8]), 160).tolist() == [160, 128, 90]
    room = generate_scene(0, 3, "room", False, 48)[0]
    assert max(room.grid_shape) == 48 and all(s % 2 == 0 for s in room.grid_shape)
    raw = room.raw_density
    assert (raw == CULLED).any() and np.isfinite(raw).all()
    kept = raw[raw > CULLED / 2]
    assert kept.max() > 5.5  # surfaces: sigma 300..3000 -> raw 5.7..8
    stats = scene_statistics(room)
    assert 0.05 <= stats["occupied_fraction"] <= 0.45 and stats["culled_fraction"] > 0.3
    np.testing.assert_allclose(room.world_box[0], 0, atol=1e-5)  # rooms start at the origin, z up
    assert 2.3 < room.world_box[1, 2] < 3.3


def test_scenes_are_varied():
    rng = np.random.default_rng(0)
    specs = [sample_scene(rng, f"s{i}", "object") for i in range(20)]
    kinds = {p.kind for s in specs for p in s.primitives}
    textures = {p.texture for s in specs for p in s.primitives}
    counts = {len(s.primitives) for s in specs}
    assert kinds == {"box", "sphere", "cylinder", "capsule"}
    assert textures == {"plain", "checker", "stripes", "noise"}
    assert len(counts) >= 3
    colours = np.stack([p.color for s in specs for p in s.primitives])
    assert colours.std(0).min() > 0.1


def test_empty_space_colour_is_not_zero():
    s = generate_scene(0, 1, "object", False, 24)[0]
    empty = s.opacity < 1e-3
    assert s.rgb[empty].mean() > 0.05


def test_dynamic_states_move_between_t0_and_t1():
    states = generate_scene(0, 2, "object", True, 24, times=[0.0, 0.5, 1.0])
    assert [s.time() for s in states] == [0.0, 0.5, 1.0]
    assert [s.name for s in states] == ["synth_000002_t000", "synth_000002_t050", "synth_000002_t100"]
    assert all(str(s.extras["scene_group"]) == "synth_000002" for s in states)
    occ = [s.opacity > 0.5 for s in states]
    assert (occ[0] != occ[2]).mean() > 0.001  # objects moved
    # the middle state lies between the ends: its centre of mass is near the mean of theirs
    com = [np.argwhere(o).mean(0) for o in occ]
    assert np.linalg.norm(com[1] - (com[0] + com[2]) / 2) < 0.25 * np.linalg.norm(com[2] - com[0]) + 1.0


def test_tabletop_scenes_stand_on_a_floor_that_fills_the_box_and_cameras_frame_the_things():
    from tnerf_ns.scenes.render_dataset import RenderSettings, cameras_for

    scenes = [generate_scene(5, i, "tabletop", False, 32)[0] for i in range(6)]
    backdrops = 0
    for scene in scenes:
        solid = scene.opacity > 0.5
        assert solid[:, :, 0].mean() > 0.95  # the bottom layer is table, edge to edge
        side_walls = [solid[0], solid[-1], solid[:, 0], solid[:, -1]]
        backdrops += any(w[:, solid.shape[2] // 2 :].mean() > 0.9 for w in side_walls)
        subject = np.asarray(scene.extras["subject_box"])
        box = scene.world_box
        assert (subject[0] >= box[0] - 1e-6).all() and (subject[1] <= box[1] + 1e-6).all()
        assert subject.mean(0)[2] > box[0, 2] + 0.06  # the things stand on the table, above its top
        poses, _ = cameras_for(scene, RenderSettings(views=6), seed=0)
        centres = poses[:, :3, 3]
        assert (centres[:, 2] > box[0, 2]).all()  # looking down at the table, never from under it
        # each camera looks at the things: its optical axis (-z in OpenGL) passes near the subject's centre
        to_subject = subject.mean(0) - centres
        axis = -poses[:, :3, 2]
        cos = (to_subject * axis).sum(-1) / np.linalg.norm(to_subject, axis=-1)
        assert (cos > 0.95).all()
    assert 1 <= backdrops <= 5  # some scenes have a backdrop wall, some not
    assert "subject_box" not in generate_scene(5, 0, "object", False, 32)[0].extras
