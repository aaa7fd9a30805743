"""Grad-CAM: localisation on a model whose class evidence sits in a known region, gradients
against central finite differences (float64), the heatmap formula, binary/logit scores,
errors, and the overlay."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from jaxvision.interpret import class_score_gradient, grad_cam, overlay_heatmap, save_titled_image
from jaxvision.layers import Conv2D, Dense, Flatten, MaxPooling2D, Rescaling, set_policy
from jaxvision.models import Sequential

REGIONS = [(slice(2, 8), slice(9, 15)), (slice(9, 15), slice(1, 7))]  # red square of image 0, 1


@pytest.fixture(scope="module")
def region_model():
    """A 1×1 conv with a red detector (channel 0) and a green detector (channel 1), 2×2
    max-pooling, then class 0 = total red evidence; class 1 is negative on everything."""
    rngs = nnx.Rngs(0)
    model = Sequential([Rescaling(1 / 255), Conv2D(3, 2, 1, activation="relu", rngs=rngs), MaxPooling2D(2),
                        Flatten(), Dense(8 * 8 * 2, 2, rngs=rngs)])
    model.conv2d.kernel[...] = jnp.array([[1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])[None, None]
    kernel = np.zeros((128, 2), np.float32)
    kernel[0::2, 0] = 1 / 64  # Flatten is (h, w, c) row-major: channel 0 entries
    kernel[:, 1] = -1 / 64
    model.dense.kernel[...] = jnp.asarray(kernel)
    return model


@pytest.fixture(scope="module")
def region_images():
    rng = np.random.default_rng(0)
    images = np.array([30, 180, 30], np.float32) + rng.uniform(0, 40, (2, 16, 16, 3)).astype(np.float32)
    for n, region in enumerate(REGIONS):
        images[(n, *region)] = np.array([200, 30, 30]) + rng.uniform(0, 40, (6, 6, 3))
    return images


def mass_inside(heatmap, rows, cols):
    return heatmap[rows, cols].sum() / heatmap.sum()


def test_heatmap_mass_lies_in_the_evidence_region(region_model, region_images):
    heatmaps = grad_cam(region_model, region_images, "conv2d")  # top class: class 0 for both
    assert heatmaps.shape == (2, 16, 16) and heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0 and np.allclose(heatmaps.max(axis=(1, 2)), 1.0)
    for n, (rows, cols) in enumerate(REGIONS):
        assert mass_inside(heatmaps[n], rows, cols) >= 0.8
        assert mass_inside(heatmaps[n], *REGIONS[1 - n]) <= 0.05  # not the other image's region
    # After 2×2 pooling the regions are rows 1-3 / cols 4-7 and rows 4-7 / cols 0-3.
    pooled = grad_cam(region_model, region_images, "max_pooling2d", class_index=0)
    assert pooled.shape == (2, 8, 8)
    assert mass_inside(pooled[0], slice(1, 4), slice(4, 8)) >= 0.8
    assert mass_inside(pooled[1], slice(4, 8), slice(0, 4)) >= 0.8


def test_class_with_only_negative_evidence_gives_a_zero_heatmap(region_model, region_images):
    heatmaps = grad_cam(region_model, region_images, "conv2d", class_index=1)
    np.testing.assert_array_equal(heatmaps, 0.0)


def fd_models(seed=0):
    """Conv → pool → conv → dense heads: softmax (3 classes), sigmoid, and the same linear."""
    def body():
        rngs = nnx.Rngs(seed)
        return [Rescaling(1 / 255), Conv2D(3, 4, 3, activation="relu", rngs=rngs), MaxPooling2D(2),
                Conv2D(4, 5, 3, activation="relu", rngs=rngs), Flatten()]
    softmax = Sequential([*body(), Dense(20, 3, activation="softmax", rngs=nnx.Rngs(1))])
    sigmoid = Sequential([*body(), Dense(20, 1, activation="sigmoid", rngs=nnx.Rngs(2))])
    linear = Sequential([*body(), Dense(20, 1, rngs=nnx.Rngs(2))])
    return softmax, sigmoid, linear


def replaced_score(model, images, layer, activation, classes, binary):
    """The class score when the layer's output is *replaced* by ``activation`` (float64)."""
    out = np.asarray(model.forward(images, lambda name, value: activation if name == layer else value))
    if binary:
        logit = np.log(out[:, 0]) - np.log(1 - out[:, 0])
        return np.sum(np.where(classes == 1, logit, -logit))
    return np.sum(out[np.arange(len(out)), classes])


@pytest.mark.parametrize("head, class_index", [("softmax", None), ("softmax", 2), ("sigmoid", None),
                                               ("sigmoid", 0)])
def test_gradient_matches_central_differences(x64, head, class_index):
    model = set_policy(fd_models()[0 if head == "softmax" else 1], "float64")
    images = jnp.asarray(np.random.default_rng(1).uniform(0, 255, (2, 10, 10, 3)))
    activation, grads = class_score_gradient(model, images, "conv2d", class_index)
    assert activation.dtype == np.float64 and activation.shape == grads.shape == (2, 8, 8, 4)
    out = np.asarray(model(images))
    binary = head == "sigmoid"
    predicted = (out[:, 0] >= 0.5).astype(int) if binary else out.argmax(-1)
    classes = predicted if class_index is None else np.full(2, class_index)
    # Positive activations only: nudging a zero could flip a max-pool tie.
    coords = np.argwhere(activation > 0)
    coords = coords[np.random.default_rng(2).choice(len(coords), 12, replace=False)]
    eps = 1e-6
    for coord in map(tuple, coords):
        up, down = activation.copy(), activation.copy()
        up[coord] += eps
        down[coord] -= eps
        fd = (replaced_score(model, images, "conv2d", jnp.asarray(up), classes, binary)
              - replaced_score(model, images, "conv2d", jnp.asarray(down), classes, binary)) / (2 * eps)
        np.testing.assert_allclose(grads[coord], fd, rtol=1e-5, atol=1e-9)
    assert np.abs(grads).max() > 0


def test_binary_scores_are_signed_logits(x64):
    _, sigmoid, linear = (set_policy(model, "float64") for model in fd_models())
    images = jnp.asarray(np.random.default_rng(3).uniform(0, 255, (3, 10, 10, 3)))
    _, dog = class_score_gradient(sigmoid, images, "conv2d", 1)
    _, cat = class_score_gradient(sigmoid, images, "conv2d", 0)
    np.testing.assert_allclose(cat, -dog, rtol=1e-12)
    # log(p / (1 - p)) of a sigmoid is the logit the linear twin outputs directly.
    _, logit = class_score_gradient(linear, images, "conv2d", 1, from_logits=True)
    np.testing.assert_allclose(dog, logit, rtol=1e-7, atol=1e-12)


def test_heatmap_is_the_relu_of_the_gradient_weighted_channel_mean():
    softmax, _, _ = fd_models()
    images = np.random.default_rng(4).uniform(0, 255, (3, 10, 10, 3)).astype(np.float32)
    activation, grads = class_score_gradient(softmax, images, "conv2d_1")
    cam = np.maximum((activation * grads.mean(axis=(1, 2))[:, None, None, :]).mean(-1), 0)
    expected = np.where(cam.max((1, 2), keepdims=True) > 0, cam / np.maximum(cam.max((1, 2), keepdims=True), 1e-30), 0)
    np.testing.assert_allclose(grad_cam(softmax, images, "conv2d_1"), expected, rtol=1e-5, atol=1e-6)


def test_saturated_sigmoid_gives_a_finite_zero_heatmap():
    _, sigmoid, _ = fd_models()
    sigmoid.dense.bias[...] = jnp.array([100.0])  # p == 1.0 exactly in float32
    heatmap = grad_cam(sigmoid, np.full((1, 10, 10, 3), 100.0, np.float32), "conv2d")
    np.testing.assert_array_equal(heatmap, 0.0)


@pytest.mark.parametrize("layer, match", [
    ("block14", r"unknown layer name\(s\) \['block14'\]; available: \['rescaling', 'conv2d', 'max_pooling2d'"),
    ("flatten", r"layer\(s\) \['flatten'\] have no \(N, H, W, C\) output"),
])
def test_bad_layer(layer, match):
    with pytest.raises(ValueError, match=match):
        grad_cam(fd_models()[0], np.zeros((1, 10, 10, 3), np.float32), layer)


def test_overlay_puts_the_hot_spot_where_the_heatmap_is(tmp_path):
    image = np.full((40, 60, 3), 100.0)
    heatmap = np.zeros((4, 4))
    heatmap[0, 0] = 1.0
    out = overlay_heatmap(image, heatmap)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    assert out.min() == 0 and out.max() == 255  # min-max rescaled like keras array_to_img
    top_left, bottom_right = out[0, 0].astype(int), out[-1, -1].astype(int)
    assert top_left[0] > top_left[2] and bottom_right[2] > bottom_right[0]  # jet: red hot, blue cold
    path = save_titled_image(out, tmp_path / "cam.png", "cat 0.93")
    with Image.open(path) as png:
        assert png.size == (60, 40 + 30)


def test_default_layer_is_the_last_with_more_than_one_position():
    """conv 4×4 → 2×2, pool → 1×1: a 1×1 map has one position, so its heatmap is 1 (or 0)
    whatever the image; the default is the 2×2 conv, and an explicit 1×1 choice warns."""
    model = Sequential([Conv2D(3, 4, 3, activation="relu", rngs=nnx.Rngs(0)), MaxPooling2D(2), Flatten(),
                        Dense(4, 2, activation="softmax", rngs=nnx.Rngs(1))])
    images = np.random.default_rng(5).uniform(0, 1, (3, 4, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(grad_cam(model, images), grad_cam(model, images, "conv2d"))
    assert grad_cam(model, images).shape == (3, 2, 2)
    with pytest.warns(UserWarning, match=r"'max_pooling2d', whose output is 1 × 1 \(\(3, 1, 1, 4\)\), is uniform "
                                         r"by construction; the default layer is 'conv2d'"):
        uniform = grad_cam(model, images, "max_pooling2d")
    assert uniform.shape == (3, 1, 1) and set(np.unique(uniform)) <= {0.0, 1.0}
    only_flat = Sequential([Flatten(), Dense(48, 2, rngs=nnx.Rngs(0))])
    with pytest.raises(ValueError, match=r"Sequential: no layer has an \(N, h, w, C\) output with more than one"):
        grad_cam(only_flat, images)
    one_position = Sequential([Conv2D(3, 4, 3, rngs=nnx.Rngs(0)), Flatten(), Dense(4, 2, rngs=nnx.Rngs(1))])
    with pytest.warns(UserWarning, match=r"'conv2d', whose .* no layer of this model has more positions"):
        assert grad_cam(one_position, images[:, :3, :3], "conv2d").shape == (3, 1, 1)


def keras_book_gradcam(keras, model, img_array, last_conv_layer_name, classifier_layer_names):
    """Listings 10.18, 10.19 and 10.22 as the book writes them for the JAX backend."""
    import jax
    from keras import ops

    last_conv_layer = model.get_layer(last_conv_layer_name)
    # model.input where the book writes model.inputs: the same model, without Keras 3.15's
    # warning that a list of one input does not match an array argument.
    last_conv_layer_model = keras.Model(model.input, last_conv_layer.output)
    classifier_input = keras.Input(shape=last_conv_layer.output.shape[1:])
    x = classifier_input
    for layer_name in classifier_layer_names:
        x = model.get_layer(layer_name)(x)
    classifier_model = keras.Model(classifier_input, x)

    def loss_fn(last_conv_layer_output):
        preds = classifier_model(last_conv_layer_output)
        top_pred_index = ops.argmax(preds[0])
        top_class_channel = preds[:, top_pred_index]
        return top_class_channel[0]

    last_conv_layer_output = last_conv_layer_model(img_array)
    grads = jax.grad(loss_fn)(last_conv_layer_output)
    pooled_grads = np.mean(np.asarray(grads), axis=(0, 1, 2))
    last_conv_layer_output = np.array(last_conv_layer_output[0])
    for i in range(pooled_grads.shape[-1]):
        last_conv_layer_output[:, :, i] *= pooled_grads[i]
    heatmap = np.mean(last_conv_layer_output, axis=-1)
    heatmap = np.maximum(heatmap, 0)
    heatmap /= np.max(heatmap)
    return pooled_grads, heatmap


def test_the_books_keras_gradcam_on_the_pretrained_mobilenet(keras, tmp_path):
    """The book's Grad-CAM in Keras 3 beside grad_cam, same ImageNet weights, on the elephant:
    the gradient is of the top class's softmax probability."""
    from jaxvision.applications import MobileNet, preprocess_input
    from jaxvision.data import data_root
    from jaxvision.weights import save_keras_weights

    ours = MobileNet(alpha=0.75, weights="imagenet")
    save_keras_weights(ours, tmp_path / "mobilenet.weights.h5")
    twin = keras.applications.MobileNet(alpha=0.75, weights=None)
    twin.load_weights(tmp_path / "mobilenet.weights.h5")
    with Image.open(data_root() / "images" / "elephant.jpg") as img:
        photo = np.asarray(img.convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)[None]
    images = preprocess_input(photo)
    names = [layer.name for layer in twin.layers]  # Keras numbers its reshape layers per session
    head = names[names.index("conv_pw_13_relu") + 1:]
    assert head[0].startswith("global_average_pooling2d") and head[-1] == "predictions"
    pooled, heatmap = keras_book_gradcam(keras, twin, images, "conv_pw_13_relu", head)

    _, grads = class_score_gradient(ours, images, "conv_pw_13_relu")
    ours_pooled = grads[0].mean(axis=(0, 1))
    np.testing.assert_allclose(ours_pooled, pooled, rtol=1e-5, atol=1e-5 * np.abs(pooled).max())
    np.testing.assert_allclose(grad_cam(ours, images, "conv_pw_13_relu")[0], heatmap, rtol=1e-5, atol=1e-5)
    # The logit (a named option: classifier_activation=None) gives another heatmap.
    logits = MobileNet(alpha=0.75, weights="imagenet", classifier_activation=None)
    assert np.abs(grad_cam(logits, images, "conv_pw_13_relu")[0] - heatmap).max() > 0.05


def test_segmentation_score_is_the_class_summed_over_its_predicted_region():
    """On a per-pixel softmax output, the score's gradient is that of the class probability summed
    over the pixels predicted as the class (the region held fixed), by hand with jax.grad."""
    import jax

    rngs = nnx.Rngs(3)
    model = Sequential([Conv2D(3, 4, 3, padding="same", activation="relu", rngs=rngs),
                        Conv2D(4, 3, 1, activation="softmax", rngs=rngs)])
    images = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 6, 3)), jnp.float32)
    activation, grads = class_score_gradient(model, images, "conv2d", class_index=1)

    def score(hidden):
        probabilities = model.conv2d_1(hidden)
        region = jax.lax.stop_gradient(probabilities.argmax(-1) == 1)
        return jnp.where(region, probabilities[..., 1], 0).sum()

    hidden = model.conv2d(images)
    assert 0 < int((model.conv2d_1(hidden).argmax(-1) == 1).sum()) < hidden[..., 0].size  # a real region
    np.testing.assert_allclose(activation, hidden, rtol=1e-6)
    np.testing.assert_allclose(grads, jax.grad(score)(hidden), rtol=1e-5, atol=1e-7)
    # The default class is the one predicted at the most pixels of each image.
    counts = np.stack([(model(images).argmax(-1) == c).sum(axis=(1, 2)) for c in range(3)], -1)
    np.testing.assert_allclose(class_score_gradient(model, images, "conv2d")[1],
                               class_score_gradient(model, images, "conv2d", counts.argmax(-1))[1], rtol=1e-6)
