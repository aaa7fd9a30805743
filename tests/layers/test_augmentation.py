"""RandomFlip / RandomRotation / RandomZoom: Keras parity on fixed transforms, sampling
ranges, per-image independence, joint image/mask transforms and the grain batch transform."""

import grain
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.layers.affine import FILL_MODES, INTERPOLATIONS
from jaxvision.layers.augmentation import AugmentBatch, RandomFlip, RandomRotation, RandomZoom, augment
from layer_checks import training


def _images(n: int = 2, h: int = 12, w: int = 17, c: int = 3) -> np.ndarray:
    # Non-square so a height/width mix-up shows.
    return np.random.default_rng(0).random((n, h, w, c)).astype(np.float32)


def _layers(seed: int = 1):
    """One of each layer, each with its own ``augment`` stream seeded ``seed``."""
    return [training(RandomFlip(rngs=nnx.Rngs(augment=seed))), training(RandomRotation(0.2, rngs=nnx.Rngs(augment=seed))),
            training(RandomZoom(0.3, rngs=nnx.Rngs(augment=seed)))]


def _pattern(n: int = 4, size: int = 16) -> np.ndarray:
    """Labels 0 (background), 1 (a bar) and 2 (a bright off-centre square)."""
    mask = np.zeros((n, size, size), np.int32)
    mask[:, 1:3, :] = 1
    mask[:, 4:8, 9:14] = 2
    return mask


def _classify(out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per image: 0 unchanged, 1 left-right, 2 up-down, 3 both, -1 something else."""
    cands = [x, x[:, :, ::-1], x[:, ::-1], x[:, ::-1, ::-1]]
    hits = np.stack([(out == c).all(axis=(1, 2, 3)) for c in cands], axis=1)
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1)


def test_eval_mode_is_exact_identity():
    x, mask = jnp.asarray(_images()), jnp.zeros((2, 12, 17), jnp.int32).at[:, 3:6, 2:9].set(1)
    for layer in _layers():
        layer.eval()
        np.testing.assert_array_equal(layer(x), x)
        out, out_mask = layer(x, mask)
        np.testing.assert_array_equal(out, x)
        np.testing.assert_array_equal(out_mask, mask)
        layer.train()  # and back in training mode the images do change
        assert float(jnp.abs(layer(x) - x).max()) > 0.1


def test_flip_transform_matches_numpy_flips():
    x = _images(4)
    params = jnp.array([[True, False], [False, True], [True, True], [False, False]])
    out = np.asarray(RandomFlip(rngs=nnx.Rngs(0)).transform(jnp.asarray(x), params))
    np.testing.assert_array_equal(out[0], x[0, :, ::-1])
    np.testing.assert_array_equal(out[1], x[1, ::-1])
    np.testing.assert_array_equal(out[2], x[2, ::-1, ::-1])
    np.testing.assert_array_equal(out[3], x[3])


@pytest.mark.parametrize("mode, allowed", [("horizontal", {0, 1}), ("vertical", {0, 2}),
                                           ("horizontal_and_vertical", {0, 3})])
def test_flip_modes_flip_half_of_the_images(mode, allowed, keras):
    x = np.tile(np.arange(6, dtype=np.float32).reshape(1, 2, 3, 1), (1000, 1, 1, 1))
    kinds = _classify(np.asarray(training(RandomFlip(mode, rngs=nnx.Rngs(augment=0)))(jnp.asarray(x))), x)
    assert set(np.unique(kinds)) == allowed
    assert 0.45 < np.mean(kinds != 0) < 0.55
    # Keras 3 draws one coin per image, so "horizontal_and_vertical" flips both axes or neither.
    keras_kinds = _classify(np.asarray(keras.layers.RandomFlip(mode, seed=0)(x, training=True)), x)
    assert set(np.unique(keras_kinds)) == allowed


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_fixed_rotation_matches_keras(fill_mode, interpolation, keras):
    x = _images()
    for turn in (0.1, -0.3428):  # 36° and about -123.4°
        ref = keras.layers.RandomRotation((turn, turn), fill_mode=fill_mode, interpolation=interpolation,
                                          fill_value=0.3, seed=0)(x, training=True)
        layer = training(RandomRotation((turn, turn), fill_mode, interpolation, 0.3, rngs=nnx.Rngs(0)))
        np.testing.assert_allclose(layer(jnp.asarray(x)), ref, atol=1e-5)
        fixed = layer.transform(jnp.asarray(x), jnp.full((2,), turn * 360.0))
        np.testing.assert_allclose(fixed, ref, atol=1e-5)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_fixed_zoom_matches_keras(fill_mode, interpolation, keras):
    x = _images()
    ref = keras.layers.RandomZoom((0.3, 0.3), (-0.45, -0.45), fill_mode=fill_mode, interpolation=interpolation,
                                  fill_value=0.3, seed=0)(x, training=True)
    layer = training(RandomZoom((0.3, 0.3), (-0.45, -0.45), fill_mode, interpolation, 0.3, rngs=nnx.Rngs(0)))
    np.testing.assert_allclose(layer(jnp.asarray(x)), ref, atol=1e-5)
    np.testing.assert_allclose(layer.transform(jnp.asarray(x), jnp.array([[1.3, 0.55]] * 2)), ref, atol=1e-5)


def test_zoom_without_width_factor_keeps_aspect_like_keras(keras):
    x = _images()
    ref = keras.layers.RandomZoom((-0.4, -0.4), seed=0)(x, training=True)
    np.testing.assert_allclose(training(RandomZoom((-0.4, -0.4), rngs=nnx.Rngs(0)))(jnp.asarray(x)), ref, atol=1e-5)


@pytest.mark.parametrize("fill_mode", ["constant", "reflect"])
def test_masks_match_keras_segmentation_masks(fill_mode, keras):
    x, mask = _images(2, 16, 16), _pattern(2)[..., None]
    for ours, ref_layer in [
        (training(RandomRotation((0.07, 0.07), fill_mode, rngs=nnx.Rngs(0))),
         keras.layers.RandomRotation((0.07, 0.07), fill_mode=fill_mode, seed=0)),
        (training(RandomZoom((0.25, 0.25), (-0.3, -0.3), fill_mode, rngs=nnx.Rngs(0))),
         keras.layers.RandomZoom((0.25, 0.25), (-0.3, -0.3), fill_mode=fill_mode, seed=0)),
    ]:
        ref = ref_layer({"images": x, "segmentation_masks": mask}, training=True)
        out, out_mask = ours(jnp.asarray(x), jnp.asarray(mask))
        np.testing.assert_allclose(out, ref["images"], atol=1e-5)
        np.testing.assert_array_equal(out_mask, ref["segmentation_masks"])
        assert out_mask.dtype == jnp.int32


def test_rotation_by_a_quarter_turn_is_counter_clockwise():
    x = _images(1, 9, 9)
    out = RandomRotation(0.25, rngs=nnx.Rngs(0)).transform(jnp.asarray(x), jnp.array([90.0]))
    np.testing.assert_allclose(out[0], np.rot90(x[0]), atol=1e-5)


def test_sampled_parameters_stay_in_range_and_are_independent():
    key = jax.random.key(5)
    angles = np.asarray(RandomRotation((0.25, -0.1), rngs=nnx.Rngs(0)).sample(key, 1000))
    assert angles.shape == (1000,) and len(np.unique(angles)) == 1000
    assert -36.0 <= angles.min() < -34.0 and 88.0 < angles.max() <= 90.0
    assert abs(angles.mean() - 27.0) < 4.0
    zooms = np.asarray(RandomZoom(0.2, (-0.3, 0.1), rngs=nnx.Rngs(0)).sample(key, 1000))
    assert 0.8 <= zooms[:, 0].min() < 0.82 and 1.18 < zooms[:, 0].max() <= 1.2
    assert 0.7 <= zooms[:, 1].min() < 0.72 and 1.08 < zooms[:, 1].max() <= 1.1
    assert abs(np.corrcoef(zooms[:, 0], zooms[:, 1])[0, 1]) < 0.1  # height and width drawn apart
    same = np.asarray(RandomZoom(0.2, rngs=nnx.Rngs(0)).sample(key, 1000))
    np.testing.assert_array_equal(same[:, 0], same[:, 1])
    assert 0.8 <= same.min() < 0.82 and 1.18 < same.max() <= 1.2
    coins = np.asarray(RandomFlip("horizontal", rngs=nnx.Rngs(0)).sample(key, 1000))
    assert 0.45 < coins[:, 0].mean() < 0.55 and not coins[:, 1].any()


def test_call_is_sample_then_transform_with_the_stream_key():
    x = jnp.asarray(np.tile(_images(1), (6, 1, 1, 1)))  # six copies of one image
    for layer in _layers():
        key = nnx.Rngs(augment=1).augment()  # the first key the layer's stream hands out
        out = layer(x)
        np.testing.assert_array_equal(out, layer.transform(x, layer.sample(key, 6)))
    # Each copy got its own angle: all six rotated outputs differ pairwise.
    out = np.asarray(training(RandomRotation(0.2, rngs=nnx.Rngs(augment=2)))(x))
    gaps = np.abs(out[:, None] - out[None]).max(axis=(2, 3, 4))
    assert (gaps + np.eye(6) > 1e-3).all()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_shapes_and_dtypes_are_preserved(dtype):
    x = jnp.asarray(_images())
    for layer, ref in zip(_layers(), _layers()):
        out = layer(x.astype(dtype))
        assert out.shape == x.shape and out.dtype == dtype
        np.testing.assert_allclose(out.astype(jnp.float32), ref(x), atol=2e-2)


def test_unbatched_image_and_mask():
    x, mask = jnp.asarray(_images(1, 16, 16)), jnp.asarray(_pattern(1))
    for layer, ref in zip(_layers(), _layers()):
        out, out_mask = layer(x[0], mask[0])
        ref_out, ref_mask = ref(x, mask)
        assert out.shape == (16, 16, 3) and out_mask.shape == (16, 16)
        np.testing.assert_array_equal(out, ref_out[0])
        np.testing.assert_array_equal(out_mask, ref_mask[0])


def test_jit_and_seeds():
    x = jnp.asarray(_images(8, 8, 9))  # 8 images, so two flip draws agree only with odds 1/256
    call = nnx.jit(lambda layer, images: layer(images))
    for jitted, eager, other in zip(_layers(), _layers(), _layers(seed=4)):
        first = call(jitted, x)
        np.testing.assert_allclose(first, eager(x), atol=1e-5)  # same seed, same draw
        np.testing.assert_allclose(call(jitted, x), eager(x), atol=1e-5)  # the stream advances alike
        assert not np.array_equal(call(jitted, x), first)
        assert not np.array_equal(other(x), first)


@pytest.mark.parametrize("mask_dtype, channel", [(np.uint8, False), (np.int32, True), (np.float32, False)])
def test_joint_image_and_mask_move_together(mask_dtype, channel):
    labels = _pattern(8)
    mask = jnp.asarray(labels[..., None] if channel else labels, mask_dtype)
    image = jnp.asarray(np.repeat(labels[..., None] * 0.5, 3, axis=-1), jnp.float32)  # the square is 1.0
    rngs = nnx.Rngs(augment=3)
    cases = [(training(RandomFlip(rngs=rngs)), True),
             (training(RandomRotation(0.2, "reflect", "nearest", rngs=rngs)), True),
             (training(RandomZoom(0.3, fill_mode="constant", interpolation="nearest", rngs=rngs)), True),
             (training(RandomRotation(0.2, rngs=rngs)), False), (training(RandomZoom(0.3, rngs=rngs)), False)]
    for layer, nearest in cases:
        out, out_mask = layer(image, mask)
        assert out_mask.dtype == mask_dtype and out_mask.shape == mask.shape
        m = np.asarray(out_mask).reshape(8, 16, 16).astype(np.float32)
        assert set(np.unique(m).tolist()) <= {0.0, 1.0, 2.0} and (m != labels).any()
        if nearest:
            # Same parameters, same sampling, same fill: the image is exactly label * 0.5 again.
            np.testing.assert_array_equal(out[..., 0], m * 0.5)
        else:
            # Bilinear images: the bright square's centroid follows the mask's square.
            bright = np.asarray(out[..., 0]) > 0.75
            for i in range(8):
                np.testing.assert_allclose(np.argwhere(bright[i]).mean(0), np.argwhere(m[i] == 2).mean(0),
                                           atol=0.75)


def test_bad_arguments_raise_clear_errors():
    rngs = nnx.Rngs(0)
    cases = [
        (lambda: RandomFlip("diagonal", rngs=rngs), "mode must be one of"),
        (lambda: RandomRotation(0.1, fill_mode="mirror", rngs=rngs), "fill_mode must be one of"),
        (lambda: RandomZoom(0.1, interpolation="bicubic", rngs=rngs), "interpolation must be one of"),
        (lambda: RandomRotation(1.5, rngs=rngs), r"factor must be .* in \[-1, 1\]"),
        (lambda: RandomRotation((0.1, 0.2, 0.3), rngs=rngs), "factor must be"),
        (lambda: RandomRotation("0.1", rngs=rngs), "factor must be"),
        (lambda: RandomZoom(-1.0, rngs=rngs), r"height_factor must be .* in \(-1, 1\]"),
        (lambda: RandomZoom((0.2, 1.2), rngs=rngs), "height_factor must be"),
        (lambda: RandomZoom(0.1, width_factor=(-1, 0), rngs=rngs), "width_factor must be"),
        (lambda: RandomFlip(rngs=rngs, name="flip")(jnp.ones((4, 4))), "RandomFlip 'flip': expected images"),
        (lambda: RandomRotation(0.1, rngs=rngs)(jnp.ones((1, 4, 4, 1), jnp.int32)), "floating-point"),
        (lambda: RandomZoom(0.1, rngs=rngs)(jnp.ones((1, 4, 4, 1)), jnp.ones((1, 4, 5))), "masks must have shape"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()


def test_augment_batch_in_a_grain_pipeline():
    images, masks = _images(4, 16, 16), _pattern(4)
    layers = [RandomFlip(rngs=nnx.Rngs(0)), RandomRotation(0.1, rngs=nnx.Rngs(0))]
    aug = AugmentBatch(layers, masks=True)
    key = jax.random.key(3)
    out, out_masks = aug.apply(images, key, masks)
    assert isinstance(out, np.ndarray) and out.shape == images.shape and out_masks.dtype == np.int32
    ref, ref_masks = augment(layers, jnp.asarray(images), key, jnp.asarray(masks))  # the un-jitted form
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_array_equal(out_masks, ref_masks)
    assert np.abs(out - images).max() > 0.1

    def pipeline(seed: int):
        return grain.MapDataset.source([(images, masks)] * 3).seed(seed).random_map(aug)
    first, again, other = pipeline(0), pipeline(0), pipeline(1)
    for i in range(3):
        np.testing.assert_array_equal(first[i][0], again[i][0])
        np.testing.assert_array_equal(first[i][1], again[i][1])
    assert not np.array_equal(first[0][0], first[1][0])  # each batch its own key
    assert not np.array_equal(first[0][0], other[0][0])
    # Without masks=True the second item is a label array, passed through untouched.
    labels = np.arange(4)
    out, out_labels = AugmentBatch(layers)((images, labels), np.random.default_rng(7))
    key = jax.random.key(int(np.random.default_rng(7).integers(2**31)))
    np.testing.assert_allclose(out, augment(layers, jnp.asarray(images), key), atol=1e-5)
    assert out_labels is labels
