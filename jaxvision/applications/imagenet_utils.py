"""ImageNet input scaling and class names, as ``keras.applications.imagenet_utils``."""

import functools
import hashlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.data.download import data_root, fetch

CLASS_INDEX_FILE = "imagenet_class_index.json"
CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"  # the hash Keras checks
CLASS_INDEX_SHA256 = "a1e7a966a1f601d39e4b43e119b3e7dd4a2ad3ea08cf69847cbaf021013767bc"


# Keras's per-channel ImageNet statistics: "caffe" means in BGR order on [0, 255], "torch" in RGB on [0, 1].
CAFFE_MEAN = (103.939, 116.779, 123.68)
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MODES = ("tf", "caffe", "torch")


def preprocess_input(x, mode: str = "tf"):
    """Scale [0, 255] RGB pixels as ``keras.applications.imagenet_utils.preprocess_input``
    does in each ``mode`` (channels last):

    * ``"tf"``: ``x / 127.5 - 1``, to [-1, 1] (MobileNet, Xception, ResNetV2, InceptionV3,
      InceptionResNetV2);
    * ``"caffe"``: RGB to BGR, then minus the ImageNet mean pixel, not scaled (VGG, ResNet);
    * ``"torch"``: ``x / 255``, minus the ImageNet mean, divided by its standard deviation,
      per RGB channel (DenseNet).

    NumPy in, float32 NumPy out; JAX arrays stay JAX arrays. Each family's module has its own
    ``preprocess_input`` with its mode, as in Keras.

    Examples:
        >>> preprocess_input(np.array([0, 127.5, 255])).tolist()
        [-1.0, 0.0, 1.0]
        >>> [round(float(v), 3) for v in preprocess_input(np.array([255.0, 0.0, 0.0]), mode="caffe")]  # BGR
        [-103.939, -116.779, 131.32]
    """
    if mode not in MODES:
        raise ValueError(f"preprocess_input: mode must be one of {MODES}, got {mode!r}")
    if isinstance(x, jax.Array):
        xp, x = jnp, x.astype(jnp.promote_types(x.dtype, jnp.float32))
    else:
        xp, x = np, np.asarray(x, np.float32)
    dtype = x.dtype
    if mode == "tf":
        return x / xp.asarray(127.5, dtype) - xp.asarray(1.0, dtype)
    if x.shape[-1:] != (3,):
        raise ValueError(f"preprocess_input(mode={mode!r}) expects RGB images, channels last (..., 3); "
                         f"got shape {tuple(x.shape)}")
    if mode == "caffe":
        return x[..., ::-1] - xp.asarray(CAFFE_MEAN, dtype)
    return (x / xp.asarray(255.0, dtype) - xp.asarray(TORCH_MEAN, dtype)) / xp.asarray(TORCH_STD, dtype)


def class_index_path() -> Path:
    """``$JAXVISION_DATA/pretrained/imagenet_class_index.json``, downloaded (and checked)
    when it is not there; offline that is a clear error saying where to put it."""
    path = data_root() / "pretrained" / CLASS_INDEX_FILE
    if not path.exists():
        fetch(CLASS_INDEX_URL, path, CLASS_INDEX_SHA256)
    return path


@functools.cache
def _class_index(path: Path) -> dict[str, list[str]]:
    data = path.read_bytes()
    if hashlib.md5(data).hexdigest() != CLASS_INDEX_MD5:
        raise ValueError(f"{path}: md5 {hashlib.md5(data).hexdigest()} is not Keras's {CLASS_INDEX_MD5}; "
                         "replace the file with Keras's imagenet_class_index.json")
    return json.loads(data)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in output order, from Keras's class index.

    Examples:
        >>> names = imagenet_class_names()
        >>> len(names), names[386]
        (1000, 'African_elephant')
    """
    index = _class_index(class_index_path())
    return [index[str(i)][1] for i in range(1000)]


def decode_predictions(preds, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The ``top`` classes of each row of ``preds`` (N, 1000) as Keras returns them:
    ``[[(wordnet_id, name, score), ...], ...]``, highest score first.

    Examples:
        >>> preds = np.zeros((1, 1000), np.float32); preds[0, 386] = 0.9; preds[0, 101] = 0.1
        >>> decode_predictions(preds, top=2)[0][0][:2]
        ('n02504458', 'African_elephant')
    """
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or not 1 <= top <= 1000:
        raise ValueError(f"decode_predictions: top must be an integer from 1 to 1000, got {top!r}")
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError("decode_predictions expects a batch of predictions, a 2-D array of shape "
                         f"(samples, 1000); got shape {preds.shape}")
    index = _class_index(class_index_path())
    results = []
    for pred in preds:
        top_indices = pred.argsort()[-top:][::-1]
        result = [(*index[str(i)], pred[i]) for i in top_indices]
        result.sort(key=lambda item: item[2], reverse=True)
        results.append(result)
    return results
