"""The end of every keras.applications graph: the classifier (``include_top``) or the
optional global pooling of the features (``pooling``), with Keras's layer names."""

from flax import nnx

from jaxvision.layers import Dense, GlobalAveragePooling2D, GlobalMaxPooling2D
from jaxvision.models.functional import GraphBuilder


def check_pooling(family: str, pooling: str | None) -> None:
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"{family}: pooling must be None, 'avg' or 'max', got {pooling!r}")


def add_top(graph: GraphBuilder, x: str, channels: int, *, include_top: bool, pooling: str | None, classes: int,
            classifier_activation: str | None, rngs: nnx.Rngs, named_pooling: bool) -> str:
    """With the top: ``avg_pool`` then the ``predictions`` Dense. Without: ``pooling`` "avg" or
    "max", named ``avg_pool``/``max_pool`` where Keras names them (``named_pooling``: ResNet,
    DenseNet), else auto-named (``global_average_pooling2d``…); ``None`` keeps the 4-D map."""
    if include_top:
        x = graph(GlobalAveragePooling2D(), x, name="avg_pool")
        return graph(Dense(channels, classes, activation=classifier_activation, rngs=rngs), x, name="predictions")
    if pooling == "avg":
        return graph(GlobalAveragePooling2D(), x, name="avg_pool" if named_pooling else None)
    if pooling == "max":
        return graph(GlobalMaxPooling2D(), x, name="max_pool" if named_pooling else None)
    return x
