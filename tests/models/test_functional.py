"""``Functional``/``GraphBuilder``: Keras's layer order counts operations that are not layers
(``x + 3.0``), a tapped operation is reachable by name, and what the output does not read is
dropped (all checked against Keras 3's functional model)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.layers import Add, Conv2D
from jaxvision.models.functional import Functional, GraphBuilder


class Branches(Functional):
    """conv1 → (x + 3) → (x * 2) and conv2 → conv3, added; ``unused`` reads the input only."""

    def __init__(self, *, rngs: nnx.Rngs):
        graph = GraphBuilder(self)
        a = graph(Conv2D(3, 4, 1, rngs=rngs), graph.input, name="conv1")
        a = graph.operation("add_scalar", a, constant=3.0)
        a = graph.operation("multiply_scalar", a, constant=2.0, tap="doubled")
        b = graph(Conv2D(3, 4, 1, rngs=rngs), graph.input, name="conv2")
        graph(Conv2D(3, 4, 1, rngs=rngs), graph.input, name="unused")
        b = graph(Conv2D(4, 4, 1, rngs=rngs), b, name="conv3")
        graph.finish(graph(Add(), [a, b], name="sum"))


def test_operations_count_for_keras_layer_order_and_tapped_ones_are_named(keras):
    inputs = keras.Input((5, 5, 3))
    a = keras.layers.Conv2D(4, 1, name="conv1")(inputs)
    a = (a + 3.0) * 2.0
    b = keras.layers.Conv2D(4, 1, name="conv3")(keras.layers.Conv2D(4, 1, name="conv2")(inputs))
    twin = keras.Model(inputs, keras.layers.Add(name="sum")([a, b]))
    model = Branches(rngs=nnx.Rngs(0))
    # Without the two operations conv1 would come after conv2 (depth 1, not 3).
    assert list(model.layer_names) == [layer.name for layer in twin.layers[1:]] == ["conv1", "conv2", "conv3", "sum"]
    assert not hasattr(model, "unused")  # not reached from the output, as Keras leaves it out
    for name in ("conv1", "conv2", "conv3"):
        getattr(model, name).kernel[...] = jnp.asarray(twin.get_layer(name).kernel.numpy())
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype(np.float32)
    output, taps = model.intermediates(jnp.asarray(x), ["doubled", "conv1"])
    np.testing.assert_allclose(output, np.asarray(twin(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(taps["doubled"], (taps["conv1"] + 3.0) * 2.0, rtol=1e-6)


def test_unknown_operation_and_duplicate_names_are_errors():
    graph = GraphBuilder(Functional())
    with pytest.raises(ValueError, match="unknown operation 'power'"):
        graph.operation("power", graph.input, constant=2.0)
    graph.operation("add_scalar", graph.input, constant=1.0, tap="shifted")
    with pytest.raises(ValueError, match="duplicate layer name 'shifted'"):
        graph(Conv2D(3, 3, 1, rngs=nnx.Rngs(0)), "shifted", name="shifted")
