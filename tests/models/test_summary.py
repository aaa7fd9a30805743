"""``summary`` prints Keras's table for the book's models: the same rows (InputLayer first),
output shapes, parameter counts and totals with their sizes in bytes — compared cell by cell
with Keras 3's ``model.summary`` (the mini-Xception's, with "Connected to" and its Add rows, in
``tests/models/test_models.py``, beside its parity test)."""

from flax import nnx

from jaxvision.layers import Dense
from jaxvision.models import Sequential, build_model, summary
from keras_twins import keras_mnist_convnet, keras_summary_cells, summary_cells


def test_listing_8_2_summary_equals_keras(keras):
    keras.backend.clear_session()  # Keras's automatic names start again at conv2d, as jaxvision's
    model = nnx.eval_shape(lambda: build_model("mnist_convnet"))  # shapes are all a summary needs
    ours = summary_cells(summary(model, (1, 28, 28, 1), print_fn=None))
    assert ours == keras_summary_cells(keras_mnist_convnet(keras))
    rows, totals = ours
    assert rows[:3] == [["Layer (type)", "Output Shape", "Param #"], ["input_layer (InputLayer)", "(None, 28, 28, 1)", "0"],
                        ["conv2d (Conv2D)", "(None, 26, 26, 64)", "640"]]
    assert totals == ["Total params: 372,234 (1.42 MB)", "Trainable params: 372,234 (1.42 MB)",
                      "Non-trainable params: 0 (0.00 B)"]


def test_byte_sizes_follow_the_weights_dtype_and_a_chain_has_no_connected_to_column():
    model = Sequential([Dense(3, 4, rngs=nnx.Rngs(0)), Dense(4, 2, param_dtype="bfloat16", rngs=nnx.Rngs(1))])
    rows, totals = summary_cells(summary(model, (1, 3), print_fn=None))
    assert rows == [["Layer (type)", "Output Shape", "Param #"], ["input_layer (InputLayer)", "(None, 3)", "0"],
                    ["dense (Dense)", "(None, 4)", "16"], ["dense_1 (Dense)", "(None, 2)", "10"]]
    assert totals[0] == "Total params: 26 (84.00 B)"  # 16 × 4 bytes + 10 × 2
