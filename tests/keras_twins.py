"""The book's models written with Keras 3 layers (the reference), with layer names matching
jaxvision's so weights copy over by name, and the cells of Keras's printed summary. Used by the
parity tests and bench/."""

import os
import re


def keras_mnist_convnet(keras):
    layers = keras.layers
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(64, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(128, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(256, 3, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def keras_dogs_vs_cats_convnet(keras, image_size: int = 180):
    layers = keras.layers
    inputs = keras.Input(shape=(image_size, image_size, 3))
    x = layers.Rescaling(1.0 / 255)(inputs)
    for i, filters in enumerate((32, 64, 128, 256, 512)):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        if i < 4:
            x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))


def keras_mini_xception(keras, image_size: int = 64, augmentation=None):
    layers = keras.layers
    inputs = keras.Input(shape=(image_size, image_size, 3))
    x = augmentation(inputs) if augmentation is not None else inputs
    x = layers.Rescaling(1.0 / 255, name="rescaling")(x)
    x = layers.Conv2D(32, 5, use_bias=False, name="conv2d")(x)
    for i, size in enumerate((32, 64, 128, 256, 512), start=1):
        residual = x
        x = layers.BatchNormalization(name=f"block{i}_bn1")(x)
        x = layers.Activation("relu", name=f"block{i}_act1")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", use_bias=False, name=f"block{i}_sepconv1")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn2")(x)
        x = layers.Activation("relu", name=f"block{i}_act2")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", use_bias=False, name=f"block{i}_sepconv2")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{i}_pool")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same", use_bias=False, name=f"block{i}_residual")(residual)
        x = layers.Add(name=f"block{i}_add")([x, residual])
    x = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="dense")(x)
    return keras.Model(inputs, outputs)


def keras_segmenter(keras, image_size):
    layers = keras.layers
    inputs = keras.Input(shape=image_size + (3,))
    x = layers.Rescaling(1.0 / 255)(inputs)
    for filters in (64, 128, 256):
        x = layers.Conv2D(filters, 3, strides=2, activation="relu", padding="same")(x)
        x = layers.Conv2D(filters, 3, activation="relu", padding="same")(x)
    for filters in (256, 128, 64):
        x = layers.Conv2DTranspose(filters, 3, activation="relu", padding="same")(x)
        x = layers.Conv2DTranspose(filters, 3, activation="relu", padding="same", strides=2)(x)
    outputs = layers.Conv2D(3, 3, activation="softmax", padding="same")(x)
    return keras.Model(inputs, outputs)


def summary_cells(text: str) -> tuple[list[list[str]], list[str]]:
    """The rows of a Keras-style box table (``model.summary``, ``jaxvision.models.summary``),
    each a list of cells (a cell's lines joined by a space), and the totals below it; spacing
    ignored, and Keras's session-numbered ``input_layer_N`` read as ``input_layer``."""
    rows, cells, totals = [], None, []
    for line in re.sub(r"\binput_layer_\d+\b", "input_layer", text).splitlines():
        if line[:1] in "┃│":
            parts = [part.strip() for part in re.split("[┃│]", line)[1:-1]]
            cells = [f"{a} {b}".strip() for a, b in zip(cells, parts)] if cells else parts
        elif line[:1] in "┡├└":
            rows.append(cells)
            cells = None
        elif "params:" in line:
            totals.append(" ".join(line.split()))
    return rows, totals


def keras_summary_cells(model) -> tuple[list[list[str]], list[str]]:
    """``summary_cells`` of Keras's ``model.summary``, printed wide enough not to wrap."""
    printed, columns = [], os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "250"  # rich's width when not printing to a terminal
    try:
        model.summary(line_length=250, print_fn=lambda text, line_break=False: printed.append(text))
    finally:
        os.environ.pop("COLUMNS") if columns is None else os.environ.update(COLUMNS=columns)
    return summary_cells("\n".join(printed))


def keras_separable_conv_bn(keras):
    """The Keras twin of the own-model guide's forked layer (``SeparableConvBN``): a custom
    layer with its own two kernels and a tracked ``pointwise_bn`` sublayer."""

    class SeparableConvBN(keras.layers.Layer):
        def __init__(self, filters, kernel_size, padding="valid", activation=None, **kwargs):
            super().__init__(**kwargs)
            self.filters, self.kernel_size, self.padding = filters, kernel_size, padding
            self.activation = keras.activations.get(activation)
            self.pointwise_bn = keras.layers.BatchNormalization()

        def build(self, input_shape):
            channels = input_shape[-1]
            self.depthwise_kernel = self.add_weight(shape=(self.kernel_size, self.kernel_size, channels, 1),
                                                    name="depthwise_kernel")
            self.pointwise_kernel = self.add_weight(shape=(1, 1, channels, self.filters), name="pointwise_kernel")
            self.pointwise_bn.build((*input_shape[:-1], self.filters))

        def call(self, x, training=None):
            y = keras.ops.separable_conv(x, self.depthwise_kernel, self.pointwise_kernel, padding=self.padding)
            return self.activation(self.pointwise_bn(y, training=training))

    return SeparableConvBN


def keras_sepbn_net(keras, image_size: int = 16, rescale: bool = False):
    """The guide's ``sepbn_net`` in Keras (with ``rescale``: a ``Rescaling(1/255)`` first)."""
    layer = keras_separable_conv_bn(keras)
    inputs = keras.Input(shape=(image_size, image_size, 3))
    x = keras.layers.Rescaling(1 / 255, name="rescaling")(inputs) if rescale else inputs
    x = layer(8, 3, activation="relu", name="sepbn")(x)
    return keras.Model(inputs, layer(8, 3, padding="same", name="sepbn_1")(x))
