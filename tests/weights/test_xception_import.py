"""Xception-41 through legacy .h5 (by order, whatever Keras's auto names), .weights.h5 and a
KerasHub ``xception_41_imagenet``-style preset: equal to keras.applications to 1e-5.
Built once per module (22.9 M parameters), run on 71 × 71 inputs (Xception's minimum)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.applications import Xception
from jaxvision.weights import load_keras_weights, save_keras_weights
from keras_files import randomise, write_kerashub_preset, write_legacy_h5

SIZE = 71
RESIDUALS = {"conv2d": 2, "conv2d_1": 3, "conv2d_2": 4, "conv2d_3": 13}


@pytest.fixture(scope="module")
def reference(keras, tmp_path_factory):
    folder = tmp_path_factory.mktemp("xception")
    twin = keras.applications.Xception(weights=None, input_shape=(SIZE, SIZE, 3))
    randomise(twin, seed=9)
    backbone = keras.Model(twin.input, twin.get_layer("block14_sepconv2_act").output)
    x = np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    write_legacy_h5(keras, twin, folder / "xception.h5")
    backbone.save_weights(folder / "backbone.weights.h5")
    # KerasHub names the residual projections blockN_residual_{conv,bn}.
    auto = [layer.name for layer in twin.layers if layer.name.startswith(("conv2d", "batch_normalization"))]
    renames = {name: f"block{list(RESIDUALS.values())[i // 2]}_residual_{'conv' if i % 2 == 0 else 'bn'}"
               for i, name in enumerate(auto)}
    write_kerashub_preset(backbone, twin.get_layer("predictions"), folder / "preset", renames)
    return folder, x, twin.predict(x, verbose=0), backbone.predict(x, verbose=0), twin


def count(model) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat)))


def test_parameter_counts_and_last_activation():
    for include_top, total in ((False, 20_861_480), (True, 22_910_480)):
        model = nnx.eval_shape(lambda: Xception(include_top=include_top))
        assert count(model) == total
    shapes = model.layer_shapes((1, 299, 299, 3))
    assert shapes["block14_sepconv2_act"] == (1, 10, 10, 2048)
    assert list(shapes)[-3:] == ["block14_sepconv2_act", "avg_pool", "predictions"]


def test_legacy_h5_by_order_with_top_and_export_back(reference):
    folder, x, expected, _, twin = reference
    model = Xception(weights=folder / "xception.h5")
    model.eval()
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), expected, atol=1e-5)
    model.conv2d_3.kernel[...] = model.conv2d_3.kernel[...] * 2  # a residual projection, auto-named in Keras
    save_keras_weights(model, folder / "ours.weights.h5")
    twin.load_weights(folder / "ours.weights.h5")
    residual = [layer for layer in twin.layers if layer.name.startswith("conv2d")][3]
    np.testing.assert_array_equal(residual.get_weights()[0], np.asarray(model.conv2d_3.kernel[...]))
    np.testing.assert_allclose(twin.predict(x, verbose=0), np.asarray(model(jnp.asarray(x))), atol=1e-5)


def test_weights_h5_without_top(reference):
    folder, x, _, features, _ = reference
    model = Xception(include_top=False, weights=folder / "backbone.weights.h5")
    model.eval()
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), features, atol=1e-5)


def test_kerashub_preset_with_its_head(reference):
    folder, x, expected, features, _ = reference
    model = Xception(weights=folder / "preset")  # backbone + task.weights.h5's Dense head
    model.eval()
    out, acts = model.intermediates(jnp.asarray(x), ["block14_sepconv2_act"])
    np.testing.assert_allclose(np.asarray(acts["block14_sepconv2_act"]), features, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)


def test_kerashub_names_do_not_match_by_name_and_are_listed(reference):
    folder = reference[0]
    model = Xception(include_top=False, weights=folder / "backbone.weights.h5")
    with pytest.raises(ValueError, match=r"missing from the file: \[conv2d, batch_normalization, .*"
                                         r"not in the model: \[.*block2_residual_conv.*, predictions\]"):
        load_keras_weights(model, folder / "preset", by_name=True)
