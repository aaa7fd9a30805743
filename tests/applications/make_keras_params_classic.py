"""Write ``fixtures/keras_params_classic.json``: for each classic keras.applications
constructor, Keras 3's trainable and non-trainable parameter counts with and without the top,
and its layer names in ``model.layers`` order (each model built in a fresh session, so the
auto-named layers are numbered from zero, as jaxvision names them).

Run (about ten minutes on two cores; builds every model with random weights):
    KERAS_BACKEND=jax python tests/applications/make_keras_params_classic.py
"""

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

CONSTRUCTORS = ("VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2",
                "DenseNet121", "DenseNet169", "DenseNet201", "InceptionV3", "InceptionResNetV2")
FIXTURE = Path(__file__).parent / "fixtures" / "keras_params_classic.json"


def describe(name: str, include_top: bool) -> dict:
    keras.backend.clear_session()
    model = getattr(keras.applications, name)(weights=None, include_top=include_top)
    count = lambda weights: int(sum(np.prod(w.shape) for w in weights))  # noqa: E731
    return {"trainable": count(model.trainable_weights), "non_trainable": count(model.non_trainable_weights),
            "layers": [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]}


def main() -> None:
    models = {}
    for name in CONSTRUCTORS:
        top, no_top = describe(name, True), describe(name, False)
        assert top["layers"][:len(no_top["layers"])] == no_top["layers"], name
        models[name] = {"top": {k: top[k] for k in ("trainable", "non_trainable")},
                        "no_top": {k: no_top[k] for k in ("trainable", "non_trainable")},
                        "no_top_layers": len(no_top["layers"]), "layers": top["layers"]}
        print(name, models[name]["top"], models[name]["no_top"], len(top["layers"]), flush=True)
    FIXTURE.write_text(json.dumps({"keras": keras.__version__, "models": models}, indent=1) + "\n")


if __name__ == "__main__":
    main()
