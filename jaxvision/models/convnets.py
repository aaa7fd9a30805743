"""The plain convnets of DLwP ch. 8 and the residual convnet of ch. 9."""

from jaxvision.layers import Conv2D, Dense, Dropout, GlobalAveragePooling2D, MaxPooling2D, Rescaling, ResidualBlock
from jaxvision.models.augmentation import data_augmentation
from jaxvision.models.base import Sequential
from jaxvision.models.registry import register
from jaxvision.models.rngs import model_rngs


@register
def mnist_convnet(num_classes: int = 10, seed: int = 0, pooling: bool = True) -> Sequential:
    """Listing 8.1: three 3×3 convs (64, 128, 256), two max-pools, global average pooling,
    softmax; 372,234 parameters on 28×28×1 inputs. ``pooling=False`` is listing 8.5's
    "incorrectly structured" convnet without its max-pooling layers: the same 372,234
    parameters (pooling has none), but the last conv sees only 7×7 input windows and runs on
    22×22 maps instead of 3×3: about 15 times the multiply-adds.

    Examples:
        >>> import jax.numpy as jnp
        >>> mnist_convnet()(jnp.zeros((2, 28, 28, 1))).shape
        (2, 10)
        >>> mnist_convnet(pooling=False).layer_shapes((1, 28, 28, 1))["conv2d_2"]
        (1, 22, 22, 256)
    """
    rngs = model_rngs(seed)
    pools = (lambda: [MaxPooling2D(2)]) if pooling else (lambda: [])
    return Sequential([
        Conv2D(1, 64, 3, activation="relu", rngs=rngs),
        *pools(),
        Conv2D(64, 128, 3, activation="relu", rngs=rngs),
        *pools(),
        Conv2D(128, 256, 3, activation="relu", rngs=rngs),
        GlobalAveragePooling2D(),
        Dense(256, num_classes, activation="softmax", rngs=rngs),
    ])


@register
def dogs_vs_cats_convnet(augmented: bool = False, seed: int = 0, augment_in_model: bool = True) -> Sequential:
    """Listing 8.7 (``augmented=False``, 1,569,089 parameters) and listing 8.20
    (``augmented=True``: augmentation first and Dropout(0.25) before the classifier; the
    same parameter count). ``augment_in_model=False`` leaves the augmentation out of the model
    for a data pipeline to apply ([PipelineAugmentation][jaxvision.train.PipelineAugmentation]).
    Inputs are [0, 255] images of any size ≥ 78×78 (smaller ones leave nothing for the last 3×3 conv).

    Examples:
        >>> import jax.numpy as jnp
        >>> dogs_vs_cats_convnet()(jnp.zeros((1, 180, 180, 3))).shape
        (1, 1)
    """
    rngs = model_rngs(seed)
    layers = [("data_augmentation", data_augmentation(rngs))] if augmented and augment_in_model else []
    layers.append(Rescaling(1 / 255))
    channels = 3
    for i, filters in enumerate((32, 64, 128, 256, 512)):
        layers.append(Conv2D(channels, filters, 3, activation="relu", rngs=rngs))
        if i < 4:
            layers.append(MaxPooling2D(2))
        channels = filters
    layers.append(GlobalAveragePooling2D())
    if augmented:
        layers.append(Dropout(0.25, rngs=rngs))
    layers.append(Dense(512, 1, activation="sigmoid", rngs=rngs))
    return Sequential(layers)


@register
def residual_convnet(seed: int = 0) -> Sequential:
    """Ch. 9's small residual convnet (the book's ``residual_block``, after listing 9.3, three times):
    297,697 parameters on 32×32×3 inputs.

    Examples:
        >>> import jax.numpy as jnp
        >>> residual_convnet()(jnp.zeros((1, 32, 32, 3))).shape
        (1, 1)
    """
    rngs = model_rngs(seed)
    return Sequential([
        Rescaling(1 / 255),
        ("residual_block", ResidualBlock(3, 32, pooling=True, rngs=rngs)),
        ("residual_block_1", ResidualBlock(32, 64, pooling=True, rngs=rngs)),
        ("residual_block_2", ResidualBlock(64, 128, pooling=False, rngs=rngs)),
        GlobalAveragePooling2D(),
        Dense(128, 1, activation="sigmoid", rngs=rngs),
    ])
