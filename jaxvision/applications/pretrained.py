"""``weights=`` of the applications: ``None``, a path, or ``"imagenet"``.

``"imagenet"`` looks, in order, for Keras's own file name under
``$JAXVISION_DATA/pretrained/`` (what ``keras.applications`` would download), then for any
listed alternative there (a with-top file for a model without top, an offline TF.js copy),
and finally downloads Keras's release file (checking its hash where one is known). Offline
without a file that is a clear error naming the file and where to put it.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.applications.common import check_weights_arguments
from jaxvision.data.download import data_root, fetch
from jaxvision.models.convnets import model_rngs
from jaxvision.models.registry import build_model
from jaxvision.weights import load_keras_weights


def build(name: str, weights: str | os.PathLike | None, **kwargs) -> nnx.Module:
    """``build_model(name, **kwargs)``; when ``weights`` will overwrite the parameters, the
    random initialisers are skipped (the model is built abstractly, its weights zero-filled):
    compiling them once per tensor shape takes seconds and their values would be discarded.
    RNG streams (dropout) get exactly the state ``build_model`` would give them."""
    if weights is None:
        return build_model(name, **kwargs)
    model = nnx.eval_shape(lambda: build_model(name, **kwargs))
    streams = model_rngs(kwargs.get("seed", 0))
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.RngStream):
            node.key.set_value(getattr(streams, node.tag).key.get_value())
            node.count.set_value(jnp.zeros((), jnp.uint32))
        elif isinstance(node, nnx.Variable) and isinstance(node.get_value(), jax.ShapeDtypeStruct):
            shape, dtype = node.get_value().shape, node.get_value().dtype
            # NumPy's zeros, uploaded: jnp.zeros compiles one program per distinct shape
            # (NumPy has no PRNG-key dtype: a layer's stored key is made by jnp).
            is_key = jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
            node.set_value(jnp.zeros(shape, dtype) if is_key else jnp.asarray(np.zeros(shape, dtype)))
    return model


def check_weights_path(weights: str | os.PathLike | None) -> None:
    """A ``weights`` path that does not exist is a clear error (before anything is built)."""
    if weights not in (None, "imagenet") and not os.path.exists(weights):
        raise FileNotFoundError(f"weights={weights!r}: no such file; pass None, 'imagenet' or a path "
                                "to a Keras weights file")


def load_weights(model: nnx.Module, weights: str | os.PathLike | None, *, keras_file: str, url: str,
                 sha256: str | None, alternatives: Sequence[str] = (), head: Sequence[str] = (),
                 manifest: str | os.PathLike | dict | None = None) -> None:
    """Load ``weights`` into ``model`` as ``keras.applications`` does.

    Args:
      keras_file: Keras's file name for these ImageNet weights.
      url: Keras's release URL of that file.
      sha256: hash checked after a download (``None`` where Keras publishes none).
      alternatives: other file or directory names under ``pretrained/`` holding the same
        weights, loaded by layer name, where layers in ``head`` may be left over.
      head: the classifier layers a with-top alternative has and a model without top lacks.
      manifest: checked against whichever file is loaded (see ``jaxvision.weights.manifest``).
    """
    if weights is None:
        return
    if weights != "imagenet":
        check_weights_path(weights)
        load_keras_weights(model, weights, manifest=manifest)
        return
    folder = data_root() / "pretrained"
    if (folder / keras_file).exists():
        load_keras_weights(model, folder / keras_file, manifest=manifest)
        return
    for name in alternatives:
        if (folder / name).exists():
            _load_without_head(model, folder / name, head, manifest)
            return
    try:
        path = fetch(url, folder / keras_file, sha256)
    except RuntimeError as e:
        also = f" (or {', '.join(alternatives)})" if alternatives else ""
        raise RuntimeError(f"ImageNet weights {keras_file}{also} not found in {folder} and the download "
                           f"failed. Put {keras_file} (from {url}) into {folder}, or set JAXVISION_DATA to a "
                           f"folder whose pretrained/ holds it.\n{e}") from None
    load_keras_weights(model, path, manifest=manifest)


def _load_without_head(model: nnx.Module, path: Path, head: Sequence[str], manifest) -> None:
    result = load_keras_weights(model, path, by_name=True, strict=False, manifest=manifest)
    extra = set(result.unexpected) - set(head)
    if result.missing or extra:
        raise ValueError(f"{path} does not fit {type(model).__name__}: missing {list(result.missing)}, "
                         f"unexpected {sorted(extra)}")


def check_input_shape(family: str, input_shape, min_size: int, default_size: int, *, weights, include_top: bool
                      ) -> None:
    """Keras's ``obtain_input_shape`` rules for a given ``input_shape`` ``(height, width, 3)``:
    each side at least ``min_size``; ImageNet weights with the top need the default size."""
    if input_shape is None:
        return
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] != 3 or not all(isinstance(d, int) for d in shape):
        raise ValueError(f"{family}: input_shape must be (height, width, 3), got {input_shape!r}")
    if min(shape[:2]) < min_size:
        raise ValueError(f"{family}: input size must be at least {min_size}x{min_size}, got input_shape={shape}")
    if weights == "imagenet" and include_top and shape != (default_size, default_size, 3):
        raise ValueError(f"{family}: with include_top=True and ImageNet weights, input_shape must be "
                         f"{(default_size, default_size, 3)}, got {shape}")


def keras_application(family: str, builder: str, weights: str | os.PathLike | None, *, include_top: bool,
                      classes: int, pooling: str | None, keras_file: str, url: str,
                      manifest: str | os.PathLike | dict | None, sha256: str | None = None,
                      **kwargs) -> nnx.Module:
    """What every ``keras.applications`` constructor does: check the arguments as Keras does
    (before anything is built), build the registered ``builder`` and load ``weights``.

    Args:
      family: the constructor's name, for error messages.
      builder: the registered builder's name; ``include_top``, ``classes``, ``pooling`` and
        ``kwargs`` are its arguments.
      keras_file, url, sha256, manifest: as in [load_weights][jaxvision.applications.pretrained.load_weights].
    """
    check_weights_arguments(family, weights, include_top, classes, pooling)
    check_weights_path(weights)
    model = build(builder, weights, include_top=include_top, classes=classes, pooling=pooling, **kwargs)
    load_weights(model, weights, keras_file=keras_file, url=url, sha256=sha256, manifest=manifest)
    return model


def application(family: str, builder: str, *, weights: str | os.PathLike | None, include_top: bool, classes: int,
                pooling: str | None, input_shape, min_size: int, default_size: int, url_folder: str,
                weights_name: str, manifest: str | os.PathLike | dict | None, sized: bool = False,
                **kwargs) -> nnx.Module:
    """[keras_application][jaxvision.applications.pretrained.keras_application] for the classic
    families: Keras's input-size rules and its ``<weights_name>_weights_tf_dim_ordering_tf_kernels[_notop].h5``.

    Args:
      min_size, default_size: Keras's smallest input side and the ImageNet training size.
      url_folder: Keras's release folder URL of the ImageNet files.
      weights_name: the stem of Keras's file names.
      sized: the builder takes ``input_shape`` too (VGG's classifier is sized by it).
    """
    check_input_shape(family, input_shape, min_size, default_size, weights=weights, include_top=include_top)
    if sized:
        kwargs["input_shape"] = list(input_shape or (default_size, default_size, 3))
    keras_file = f"{weights_name}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    return keras_application(family, builder, weights, include_top=include_top, classes=classes, pooling=pooling,
                             keras_file=keras_file, url=url_folder + keras_file, manifest=manifest, **kwargs)
