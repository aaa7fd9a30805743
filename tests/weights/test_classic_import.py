"""The classic applications equal Keras 3 on Keras-written random weights, loaded from a
legacy ``.h5`` (by layer order) and a ``.weights.h5`` (by class and position), in inference
mode and with batch statistics: one constructor per family, at its smallest input size
(all 13 at 224²/299²: ``bench/applications_parity_classic.py``)."""

import jax
import numpy as np
import pytest
from flax import nnx

from classic_parity import jaxvision_outputs, keras_twin, max_relative_error
from jaxvision import applications

# The smallest constructor of each family, at its smallest input size in Keras.
# InceptionResNetV2 (780 layers) is checked by bench/applications_parity_classic.py only: over
# 30 s of tracing and Keras building on 2 cores.
FAMILIES = {"VGG16": 32, "ResNet50": 32, "ResNet50V2": 32, "DenseNet121": 32, "InceptionV3": 75}


@pytest.mark.parametrize("name", FAMILIES)
def test_outputs_equal_keras_on_keras_written_weights(keras, tmp_path, name):
    twin = keras_twin(keras, name, FAMILIES[name], tmp_path)
    from_legacy = getattr(applications, name)(weights=twin.legacy_h5, input_shape=twin.x.shape[1:])  # by layer order
    from_v3 = getattr(applications, name)(weights=twin.weights_h5, input_shape=twin.x.shape[1:])  # by class and position
    assert jax.tree.all(jax.tree.map(np.array_equal, nnx.state(from_legacy), nnx.state(from_v3)))
    inference, training = jaxvision_outputs(from_v3, twin.x)
    assert max_relative_error(inference, twin.inference) < 1e-5
    assert max_relative_error(training, twin.training) < 1e-5
    if name != "VGG16":  # VGG has no BatchNormalization: its two modes are one
        assert max_relative_error(training, inference) > 1e-2  # batch statistics were used
