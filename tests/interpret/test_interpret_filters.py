"""Filter visualisation: the ascent raises the filter's activation, the vmapped batch equals
the book's per-filter loop, start images, chunking, errors, deprocessing and stitching."""

import numpy as np
import pytest
from flax import nnx
from PIL import Image

from jaxvision.interpret import (activations, deprocess_image, normalize_gradient, stitch_filters,
                                 visualize_filter_loop, visualize_filters)
from jaxvision.layers import Conv2D, Dense, Flatten, MaxPooling2D, Rescaling
from jaxvision.models import Sequential

SIZE = 24  # conv 22 → pool 11 → conv 9: a 5×5 region once the 2-pixel border is dropped
FILTERS = list(range(8))


@pytest.fixture(scope="module")
def model():
    rngs = nnx.Rngs(0)
    return Sequential([Rescaling(1 / 255), Conv2D(3, 8, 3, activation="relu", rngs=rngs), MaxPooling2D(2),
                       Conv2D(8, 8, 3, activation="relu", rngs=rngs), Flatten(), Dense(648, 1, rngs=rngs)])


@pytest.fixture(scope="module")
def batch(model):
    return visualize_filters(model, "conv2d_1", FILTERS, image_size=SIZE)


def filter_means(model, images):
    """Mean activation of filter i over the inner region, for image i."""
    act = activations(model, images, ["conv2d_1"])["conv2d_1"]
    return np.array([act[i, 2:-2, 2:-2, f].mean() for i, f in enumerate(FILTERS)])


def test_start_images_are_uniform_in_the_scaled_init_range(model):
    starts = visualize_filters(model, "conv2d_1", FILTERS, image_size=SIZE, steps=0)
    assert starts.shape == (8, SIZE, SIZE, 3) and starts.dtype == np.float32
    assert starts.min() >= 0.4 * 255 and starts.max() <= 0.6 * 255
    assert starts.std() > 0.05 * 255 / 4  # noise, not a constant image
    alone = visualize_filters(model, "conv2d_1", [5], image_size=SIZE, steps=0)
    np.testing.assert_array_equal(alone[0], starts[5])  # a filter's start does not depend on the batch
    assert not np.array_equal(starts[0], starts[1])


def test_gradient_ascent_raises_the_filter_activation_tenfold(model, batch):
    before = filter_means(model, visualize_filters(model, "conv2d_1", FILTERS, image_size=SIZE, steps=0))
    after = filter_means(model, batch)
    alive = before > 0  # a filter dead on the grey start has zero gradient and cannot move
    assert alive.sum() >= 2
    assert np.all(after[alive] >= 10 * before[alive]), (before, after)
    np.testing.assert_array_equal(after[~alive], 0.0)


def test_vmapped_batch_equals_the_per_filter_loop(model, batch):
    subset = [1, 3, 6]
    loop = visualize_filter_loop(model, "conv2d_1", subset, image_size=SIZE)
    np.testing.assert_allclose(batch[subset], loop, rtol=1e-5, atol=1e-5 * np.abs(loop).max())
    # Chunks of 2 (the last one padded) with the loop rolled, as on accelerators.
    chunked = visualize_filters(model, "conv2d_1", subset, image_size=SIZE, chunk_size=2, unroll=1)
    np.testing.assert_allclose(chunked, loop, rtol=1e-5, atol=1e-5 * np.abs(loop).max())


def test_input_scale_only_rescales_the_book_units(model):
    # Conv2D on Rescaling(1/255): feeding u * 255 to this model equals feeding u to the conv.
    rngs = nnx.Rngs(0)
    bare = Sequential([Conv2D(3, 8, 3, activation="relu", rngs=rngs)])
    bare.conv2d.kernel[...] = model.conv2d.kernel[...]
    scaled = visualize_filters(model, "conv2d", [0, 2], image_size=12, steps=5, input_scale=255.0)
    np.testing.assert_allclose(scaled / 255, visualize_filters(bare, "conv2d", [0, 2], image_size=12, steps=5,
                                                               input_scale=1.0), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("layer, indices, match", [
    ("conv9", [0], r"unknown layer name\(s\) \['conv9'\]; available: \['rescaling', 'conv2d'"),
    ("dense", [0], r"have no \(N, H, W, C\) output.*spatial layers: \['rescaling', 'conv2d', 'max_pooling2d'"),
    ("conv2d_1", [8], r"filter_indices must be in \[0, 8\)"),
])
def test_bad_arguments(model, layer, indices, match):
    with pytest.raises(ValueError, match=match):
        visualize_filters(model, layer, indices, image_size=SIZE)


def test_a_layer_too_small_for_the_border_is_refused():
    # 14 px → conv 12 → pool 6 → conv 4: nothing left once the 2-pixel border is excluded.
    rngs = nnx.Rngs(0)
    convs = Sequential([Conv2D(3, 4, 3, rngs=rngs), MaxPooling2D(2), Conv2D(4, 4, 3, rngs=rngs)])
    with pytest.raises(ValueError, match=r"'conv2d_1' is only 4×4 at image_size \(14, 14\).*larger image_size"):
        visualize_filters(convs, "conv2d_1", [0], image_size=14)


def test_deprocess_image_standardises_crops_and_casts():
    image = np.zeros((60, 60, 3))
    image[:, 30:] = 5.0  # two values: standardised to -1 and +1, i.e. 64 and 192
    out = deprocess_image(image)
    assert out.shape == (10, 10, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :5], 64)
    np.testing.assert_array_equal(out[:, 5:], 192)
    clipped = deprocess_image(np.pad(np.ones((1, 1, 1)) * 1e3, ((0, 59), (0, 59), (0, 0))), crop=0)
    # The outlier clips at 255; the other pixels sit at 128 - 64·mean/std.
    assert clipped[0, 0, 0] == 255 and clipped[1, 1, 0] == 126
    with pytest.raises(ValueError, match="larger than 2 \\* crop = 50"):
        deprocess_image(np.zeros((40, 40, 3)))


def test_stitched_grid_size_and_layout(tmp_path):
    images = np.stack([np.full((7, 9, 3), 10 + k, np.uint8) for k in range(10)])
    path = stitch_filters(images, tmp_path / "grid.png", n=4, margin=5)
    with Image.open(path) as png:
        assert png.size == (4 * 9 + 3 * 5, 4 * 7 + 3 * 5)
        grid = np.asarray(png)
    assert grid[0, 0, 0] == 10 and grid[7 + 5, 9 + 5, 0] == 15  # row 1, column 1 is image 5
    assert grid[2 * 12, 2 * 14 - 1].max() == 0  # margins are black
    assert grid[3 * 12:, :].max() == 0  # cells past the 10th image are black
    with pytest.raises(ValueError, match="at most 4 uint8"):
        stitch_filters(images, tmp_path / "bad.png", n=2)


def test_normalize_gradient_is_keras_ops_normalize(keras):
    grads = np.random.default_rng(0).normal(size=(1, 2, 4, 3)).astype(np.float32)
    grads[0, 1, 2] = 0.0  # a pixel with no gradient stays still (the epsilon rule)
    grads[0, 0, 0] = [3, 4, 0]  # the example
    ours = np.asarray(normalize_gradient(grads))
    np.testing.assert_allclose(ours, np.asarray(keras.ops.normalize(grads)), rtol=1e-6, atol=0)
    np.testing.assert_allclose(ours[0, 0, 0], [0.6, 0.8, 0.0], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=-1)[grads.any(-1)], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(ours[0, 1, 2], 0.0)
    whole = np.asarray(normalize_gradient(grads, "tensor"))
    np.testing.assert_allclose(whole, grads / np.linalg.norm(grads), rtol=1e-6)
    with pytest.raises(ValueError, match=r"normalize must be one of \('pixel', 'tensor'\), got 'l1'"):
        normalize_gradient(grads, "l1")


def keras_book_filters(keras, feature_extractor, start, filter_index, steps, learning_rate=10.0):
    """The book's ``compute_loss``, listing 10.13 and listing 10.14's loop, as written for the JAX backend."""
    import jax
    from keras import ops

    def compute_loss(image, filter_index):
        activation = feature_extractor(image)
        filter_activation = activation[:, 2:-2, 2:-2, filter_index]
        return ops.mean(filter_activation)

    grad_fn = jax.grad(compute_loss)

    @jax.jit
    def gradient_ascent_step(image, filter_index, learning_rate):
        grads = grad_fn(image, filter_index)
        grads = ops.normalize(grads)
        image += learning_rate * grads
        return image

    image = start[None]
    for _ in range(steps):
        image = gradient_ascent_step(image, filter_index, learning_rate)
    return np.asarray(image[0])


def test_the_books_keras_loop_on_the_same_weights(keras, tmp_path):
    """The book's own loop (Keras 3 on JAX, ops.normalize) beside visualize_filters on the
    dogs-vs-cats convnet with identical weights, fed the images as they are (input_scale=1,
    as the book feeds its ImageNet model)."""
    from jaxvision.models import build_model
    from jaxvision.weights import save_keras_weights
    from keras_twins import keras_dogs_vs_cats_convnet

    size, layer, filters = 80, "conv2d_2", [0, 7]  # the Keras twin needs 80 px for its last conv
    ours = build_model("dogs_vs_cats_convnet")
    save_keras_weights(ours, tmp_path / "convnet.weights.h5")
    twin = keras_dogs_vs_cats_convnet(keras, size)
    twin.load_weights(tmp_path / "convnet.weights.h5")
    # By position, not name: Keras's automatic names depend on what the session built before.
    third_conv = [keras_layer for keras_layer in twin.layers if isinstance(keras_layer, keras.layers.Conv2D)][2]
    extractor = keras.Model(twin.inputs, third_conv.output)
    options = dict(image_size=size, input_scale=1.0)
    starts = visualize_filters(ours, layer, filters, steps=0, **options)
    one = visualize_filters(ours, layer, filters, steps=1, **options)
    thirty = visualize_filters(ours, layer, filters, steps=30, **options)
    for i, f in enumerate(filters):
        # One step is one normalised gradient (a unit vector per pixel) times 10: the two
        # directions agree to 1e-5 (a pixel with a tiny gradient turns most under rounding).
        book_step = (keras_book_filters(keras, extractor, starts[i], f, 1) - starts[i]) / 10.0
        np.testing.assert_allclose((one[i] - starts[i]) / 10.0, book_step, rtol=1e-5, atol=1e-5)
        # Thirty steps of length 10 per pixel: the image grows to ~300 and rounding differences
        # between the two float32 programs grow with it, so 1e-5 is relative to its largest value.
        book = keras_book_filters(keras, extractor, starts[i], f, 30)
        np.testing.assert_allclose(thirty[i], book, rtol=0, atol=1e-5 * np.abs(book).max())
