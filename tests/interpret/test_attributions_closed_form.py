"""Attribution methods on cases with known answers: a linear model's integrated gradients are
gradient × input, completeness, Score-CAM of a one-channel layer, SmoothGrad's definition,
guided backprop leaving the model alone, deletion/insertion and randomisation on models whose
evidence is known, gradients of the attributions against finite differences, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from jaxvision import interpret
from jaxvision.interpret import attributions, cams, faithfulness
from jaxvision.interpret.activations import eval_split
from jaxvision.layers import Conv2D, Dense, Flatten, GlobalAveragePooling2D, MaxPooling2D, set_policy
from jaxvision.models import Sequential

IMAGES = np.random.default_rng(0).uniform(0, 1, (2, 6, 6, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def linear():
    """y_k = Σ w_k · x + b_k (three logits)."""
    model = Sequential([Flatten(), Dense(6 * 6 * 3, 3, rngs=nnx.Rngs(0))])
    model.dense.bias[...] = jnp.array([0.3, -0.2, 0.1])
    return model


def convnet(seed=0, head="softmax"):
    rngs = nnx.Rngs(seed)
    return Sequential([Conv2D(3, 4, 3, activation="relu", rngs=rngs), MaxPooling2D(2),
                       GlobalAveragePooling2D(), Dense(4, 3, activation=head, rngs=rngs)])


def kernel_image(model, k):
    return np.asarray(model.dense.kernel[:, k]).reshape(6, 6, 3)


@pytest.mark.parametrize("rule", attributions.RULES)
def test_linear_integrated_gradients_are_gradient_times_difference(linear, rule):
    """Exact for every rule but Captum's trapezoid, whose weights (1/n, halved ends) add up to
    1 − 1/n: reproduced as Captum computes it."""
    baseline = np.full((1, 1, 1, 3), 0.25, np.float32)
    ig = interpret.integrated_gradients(linear, IMAGES, [[0, 2]], baseline=baseline, steps=4, rule=rule)
    scale = 1 - 1 / 4 if rule == "riemann_trapezoid" else 1.0
    for k, c in enumerate([0, 2]):
        np.testing.assert_allclose(ig[:, k], scale * (IMAGES - baseline) * kernel_image(linear, c), rtol=1e-5,
                                   atol=1e-7)


def test_linear_integrated_gradients_from_zero_are_gradient_times_input(linear):
    zero = interpret.integrated_gradients(linear, IMAGES, 1, steps=4)
    np.testing.assert_allclose(zero, interpret.gradient_times_input(linear, IMAGES, 1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(interpret.gradients(linear, IMAGES, 1), np.broadcast_to(kernel_image(linear, 1),
                                                                                      IMAGES.shape))


def test_completeness_on_a_softmax_convnet():
    """Σ IG = y(x) − y(x') to 1e-3 with 32 Gauss–Legendre points (the probabilities move by
    ~0.1 along the path); 4 trapezoid points are visibly off, so the check can fail."""
    model = convnet()
    images = IMAGES * 8
    ig = interpret.integrated_gradients(model, images, steps=32)
    error = interpret.completeness_error(model, images, ig)
    probabilities = np.asarray(model(images)).max(-1)
    assert np.abs(error).max() < 1e-3 and np.abs(ig.sum(axis=(1, 2, 3))).min() > 1e-2
    coarse = interpret.integrated_gradients(model, images, steps=2, rule="riemann_right")
    assert np.abs(interpret.completeness_error(model, images, coarse)).max() > 10 * np.abs(error).max()
    assert probabilities.shape == (2,)


def test_score_cam_of_a_one_channel_layer_is_the_normalised_activation():
    """One channel: the softmax over channels is 1, so Score-CAM = ReLU(A) / max."""
    model = Sequential([Conv2D(3, 1, 3, activation="relu", rngs=nnx.Rngs(0)), GlobalAveragePooling2D(),
                        Dense(1, 2, rngs=nnx.Rngs(1))])
    model.conv2d.kernel[...] = jnp.abs(model.conv2d.kernel[...])
    activation = interpret.activations(model, IMAGES, ["conv2d"])["conv2d"][..., 0]
    expected = activation / activation.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(interpret.score_cam(model, IMAGES, "conv2d"), expected, rtol=1e-6)
    np.testing.assert_allclose(interpret.score_cam(model, IMAGES, "conv2d", [[0, 1]], chunk=1),
                               np.stack([expected] * 2, axis=1), rtol=1e-6)


def test_smooth_grad_is_the_mean_over_its_noise(linear):
    # A linear model's gradient does not depend on x: SmoothGrad is the gradient, SmoothGrad² its square.
    grads = interpret.gradients(linear, IMAGES, 2)
    np.testing.assert_allclose(interpret.smooth_grad(linear, IMAGES, 2, samples=5, squared=True), grads ** 2,
                               rtol=1e-5)
    model = convnet()
    smooth = interpret.smooth_grad(model, IMAGES, 1, method="gradient_times_input", samples=3, noise_level=0.2,
                                   seed=3, chunk=2)
    sigma = 0.2 * (IMAGES.max(axis=(1, 2, 3)) - IMAGES.min(axis=(1, 2, 3)))[:, None, None, None]
    key = jax.random.PRNGKey(3)
    noisy = [IMAGES + sigma * np.asarray(jax.random.normal(jax.random.fold_in(key, s), IMAGES.shape))
             for s in range(3)]
    expected = np.mean([interpret.gradient_times_input(model, x, 1) for x in noisy], axis=0)
    np.testing.assert_allclose(smooth, expected, rtol=1e-4, atol=1e-7)


def test_guided_backprop_is_scoped_to_its_own_call():
    model = convnet()
    before = interpret.gradients(model, IMAGES, 0)
    guided = interpret.guided_backprop(model, IMAGES, 0)
    assert model.conv2d.activation_fn is jax.nn.relu
    np.testing.assert_array_equal(interpret.gradients(model, IMAGES, 0), before)
    assert np.abs(guided - before).max() > 1e-4


def test_deletion_and_insertion_rank_the_true_evidence_best(linear):
    """For y = w · x + b the exact contribution w ⊙ x deletes fastest (lowest AUC) and inserts
    fastest; its reverse order is the worst; the curves start and end at the full scores."""
    images = IMAGES + 0.5
    truth = images * kernel_image(linear, 0)
    best = faithfulness.deletion_insertion(linear, images, truth, 0, steps=12, from_logits=True)
    worst = faithfulness.deletion_insertion(linear, images, -truth, 0, steps=12, from_logits=True)
    full = np.asarray(linear(images))[:, 0]
    np.testing.assert_allclose(best["deletion"][:, 0], full, rtol=1e-5)
    np.testing.assert_allclose(best["deletion"][:, -1], np.asarray(linear(np.zeros_like(images)))[:, 0], rtol=1e-5)
    np.testing.assert_allclose(best["insertion"][:, -1], full, rtol=1e-5)
    assert (best["deletion_auc"] < worst["deletion_auc"]).all()
    assert (best["insertion_auc"] > worst["insertion_auc"]).all()
    assert (best["deletion"].min(1) < worst["deletion"].min(1)).all()  # positive contributions deleted first


def test_randomisation_cascade_decorrelates_gradients_but_not_an_edge_detector(linear):
    seen = {}

    def explain(model, images):
        seen.setdefault("models", []).append(model)
        return np.abs(interpret.gradients(model, images, 0)).sum(-1)

    result = interpret.randomization_sanity_check(linear, IMAGES, explain, seed=1)
    assert list(result) == ["dense"] and result["dense"].shape == (2,)
    assert np.abs(result["dense"]).max() < 0.5  # the randomised top layer's gradient is another map
    assert seen["models"][0] is linear and float(np.abs(linear.dense.bias[...] - jnp.array([0.3, -0.2, 0.1])).max()) == 0
    model = convnet()
    assert faithfulness.parameter_layers(model, IMAGES.shape) == ["conv2d", "dense"]
    image_only = interpret.randomization_sanity_check(model, IMAGES, lambda m, x: np.asarray(x).sum(-1))
    assert list(image_only) == ["dense", "conv2d"]
    np.testing.assert_allclose(np.stack(list(image_only.values())), 1.0)


def test_eigen_cam_of_a_rank_one_layer_is_its_spatial_pattern():
    """Activations A = a(h, w) · v: the first principal direction is v, the map is a − mean(a), ReLU'd."""
    pattern = np.random.default_rng(1).uniform(0, 1, (2, 5, 5, 1)).astype(np.float32)
    activation = jnp.asarray(pattern * np.array([1.0, -2.0, 0.5], np.float32))
    projection = np.asarray(cams.eigen_projection(activation))
    centred = (pattern - pattern.mean(axis=(1, 2), keepdims=True))[..., 0] * np.sqrt(1 + 4 + 0.25)
    # sign: positive correlation with the channel sum (−0.5 · a), so the map is −(a − mean a)
    np.testing.assert_allclose(projection, -centred, rtol=1e-4, atol=1e-5)


def test_attributions_differentiate_as_finite_differences(x64):
    model = set_policy(convnet(head="softmax"), "float64")
    graphdef, state = eval_split(model)
    images = jnp.asarray(IMAGES[:1], jnp.float64) * 4
    classes = jnp.array([[2]], jnp.int32)
    zero = jnp.zeros_like(images)

    def integrated(x):
        return attributions._attributions(graphdef, state, x, classes, zero, False, "integrated_gradients", 4,
                                          "gausslegendre", 2)

    def hires(x):
        return cams._gradient_cam(graphdef, state, x, classes, "conv2d", False, "hires_cam")

    check_grads(integrated, (images,), order=1, modes=["rev"], atol=1e-6, rtol=1e-5)
    check_grads(hires, (images,), order=1, modes=["rev"], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("call, match", [
    (lambda m: interpret.hires_cam(m, IMAGES, "conv2d", np.zeros((2, 1, 1), int)), r"class_index: an int, one per"),
    (lambda m: interpret.layer_cam(m, IMAGES, "conv2d", [0, 1, 2]), r"class_index: shape \(3,\) does not fit 2"),
    (lambda m: interpret.gradients(m, IMAGES, 0.5), r"class_index: integers expected"),
    (lambda m: interpret.integrated_gradients(m, IMAGES, baseline=np.zeros(4)), r"baseline: shape \(4,\) does not"),
    (lambda m: interpret.integrated_gradients(m, IMAGES, rule="simpson"), r"rule: 'simpson' is not one of"),
    (lambda m: interpret.integrated_gradients(m, IMAGES, steps=1, rule="riemann_left"), r"steps: 1 is too few"),
    (lambda m: interpret.smooth_grad(m, IMAGES, method="deconv"), r"method: 'deconv' is not one of"),
    (lambda m: interpret.occlusion(m, IMAGES, window=(8, 8)), r"occlusion: window \(8, 8\) and stride \(4, 4\)"),
    (lambda m: interpret.deletion_insertion(m, IMAGES, IMAGES[..., 0], [[0, 1]]), r"one class per image"),
    (lambda m: interpret.road(m, IMAGES, IMAGES[0]), r"saliency: \(N, h, w\) or \(N, H, W, C\) maps expected for "
                                                     r"N = 2 images, got shape \(6, 6, 3\)"),
    (lambda m: interpret.score_cam(m, IMAGES, "dense"), r"layer\(s\) \['dense'\] have no \(N, H, W, C\) output"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call(convnet())
