"""Write the same Keras 3 model in every weight format jaxvision reads (test fixtures).

Legacy ``.h5`` and ``.weights.h5`` come from Keras's own writers; the TF.js layers model
(``tensorflowjs`` is not installed) and the KerasHub preset (``keras-hub`` needs TensorFlow)
are written here in their documented layouts from the Keras model's weights.
"""

import json
import os

import h5py
import numpy as np

KERAS_2_NAMES = {"DepthwiseConv2D": {"kernel": "depthwise_kernel"}}  # what TF.js / Keras 2 files say


def randomise(keras_model, seed: int = 0) -> None:
    """Keep Keras's random kernels; make biases and every BatchNormalization tensor random
    too (so parity tests test every tensor), at scales that keep activations near 1."""
    rng = np.random.default_rng(seed)
    spread = {"gamma": (1.0, 0.2), "moving_variance": (1.0, 0.3)}
    for layer in keras_model.layers:
        values = []
        for w in layer.weights:
            name = w.path.rsplit("/", 1)[-1]
            if name in ("kernel", "depthwise_kernel", "pointwise_kernel"):
                values.append(np.asarray(w.numpy()))
            else:
                centre, width = spread.get(name, (0.0, 0.1))
                values.append(rng.uniform(centre - width, centre + width, w.shape).astype(np.float32))
        if values:
            layer.set_weights(values)


def fill_uniform(model, seed: int = 0) -> None:
    """Random weights for a jaxvision model, drawn in NumPy (no initialiser compilation):
    gamma and variances in [0.5, 1.5], everything else in [-0.1, 0.1]."""
    from jaxvision.weights import keras_layers
    from jaxvision.weights.model_layers import layer_variables

    rng = np.random.default_rng(seed)
    for layer in keras_layers(model).values():
        for name, variable in layer_variables(layer):
            centre = 1.0 if name in ("gamma", "moving_variance") else 0.0
            width = 0.5 if centre else 0.1
            variable[...] = rng.uniform(centre - width, centre + width, variable.shape).astype(np.float32)


def write_legacy_h5(keras, keras_model, path) -> None:
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_model)


def write_full_model_h5(keras, keras_model, path) -> None:
    """The layout of ``model.save("x.h5")``: config at the root, weights under ``model_weights``."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = keras_model.to_json()
        legacy_h5_format.save_weights_to_hdf5_group(f.create_group("model_weights"), keras_model)


def write_tfjs(keras_model, folder, groups: int = 2) -> None:
    """model.json (config + weightsManifest) and ``groups`` binary shards, float32 little-endian."""
    os.makedirs(folder, exist_ok=True)
    entries = []
    for layer in keras_model.layers:
        for w in layer.weights:
            var = w.path.rsplit("/", 1)[-1]
            var = KERAS_2_NAMES.get(type(layer).__name__, {}).get(var, var)
            entries.append((f"{layer.name}/{var}", np.asarray(w.numpy(), "<f4")))
    manifest = []
    for g, chunk in enumerate(np.array_split(np.arange(len(entries)), groups)):
        name = f"group{g + 1}-shard1of1"
        with open(os.path.join(folder, name), "wb") as f:
            for i in chunk:
                f.write(entries[i][1].tobytes())
        manifest.append({"paths": [name], "weights": [{"name": entries[i][0], "shape": list(entries[i][1].shape),
                                                       "dtype": "float32"} for i in chunk]})
    topology = {"keras_version": "2.1.4", "backend": "tensorflow",
                "model_config": {"class_name": "Model", "config": json.loads(keras_model.to_json())["config"]}}
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump({"modelTopology": topology, "weightsManifest": manifest}, f)


def write_kerashub_preset(backbone, head, folder, renames: dict[str, str]) -> None:
    """A KerasHub preset as ``save_to_preset`` lays it out: the backbone's ``.weights.h5``
    (with KerasHub's layer names recorded, ``renames``), and the head in ``task.weights.h5``."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"module": "keras_hub.src.models.xception.xception_backbone",
                   "class_name": "XceptionBackbone", "config": {"name": "xception_backbone"},
                   "registered_name": "keras_hub>XceptionBackbone"}, f)
    backbone.save_weights(os.path.join(folder, "model.weights.h5"))
    with h5py.File(os.path.join(folder, "model.weights.h5"), "r+") as f:
        for group in f["layers"].values():
            name = group["vars"].attrs.get("name")
            if name in renames:
                group["vars"].attrs["name"] = renames[name]
    with h5py.File(os.path.join(folder, "task.weights.h5"), "w") as f:
        f.create_group("vars")
        dense = f.create_group("layers/dense/vars")
        dense.attrs["name"] = head.name
        for i, w in enumerate(head.weights):
            dense.create_dataset(str(i), data=np.asarray(w.numpy()))
        f.create_group("optimizer/vars")
