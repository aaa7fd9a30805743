"""A researcher's own model as a first-class citizen: inference mode from every entry point,
registration and reloading (in a new process, only from trusted modules), ``summary`` of
every sublayer, and nested models reached by layer path."""

import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision.interpret import activations, grad_cam, visualize_filters
from jaxvision.layers import BatchNormalization, Conv2D, Dense, Dropout, GlobalAveragePooling2D, Rescaling
from jaxvision.models import Model, Sequential, build_model, register, summary
from jaxvision.models.base import DuplicateTapName
from jaxvision.train import fit, load_model, predict, restore, save_checkpoint
from keras_twins import summary_cells

MYMODELS = '''
from flax import nnx
from jaxvision.layers import BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D
from jaxvision.models import Model, register


@register
class TinyResNet(Model):
    """conv → BN → residual add → pooled logits."""

    def __init__(self, width: int = 4, *, rngs: nnx.Rngs):
        self.stem = Conv2D(3, width, 3, padding="same", activation="relu", rngs=rngs)
        self.conv = Conv2D(width, width, 3, padding="same", rngs=rngs)
        self.bn = BatchNormalization(width, rngs=rngs)
        self.pool = GlobalAveragePooling2D()
        self.head = Dense(width, 2, rngs=rngs)

    def forward(self, x, tap):
        x = tap("stem", self.stem(x))
        x = tap("add", x + tap("bn", self.bn(tap("conv", self.conv(x)))))
        return tap("head", self.head(tap("pool", self.pool(x))))
'''


def images(n: int = 8, size: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, size, size, 3)).astype(np.float32)


class Net(Model):
    def __init__(self, *, rngs: nnx.Rngs):
        self.dense = Dense(3, 4, rngs=rngs)
        self.batch_normalization = BatchNormalization(4, rngs=rngs)
        self.dropout = Dropout(0.5, rngs=rngs)
        self.out = Dense(4, 2, activation="softmax", rngs=rngs)

    def forward(self, x, tap):
        x = tap("dense", self.dense(x))
        x = tap("batch_normalization", self.batch_normalization(x))
        return tap("out", self.out(tap("dropout", self.dropout(x))))


def test_every_entry_point_gives_an_inference_mode_model(tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32) * 4 + 3
    y = (x[:, 0] > 3).astype(np.int32)
    for model in (Net(rngs=nnx.Rngs(0)), Sequential([Dense(3, 4, rngs=nnx.Rngs(0)), BatchNormalization(4, rngs=nnx.Rngs(0)),
                                                      Dropout(0.5, rngs=nnx.Rngs(0)), Dense(4, 2, activation="softmax", rngs=nnx.Rngs(0))])):
        fit(model, (x, y), epochs=2, loss="sparse_categorical_crossentropy", optimizer=optax.adam(0.05), verbose=0)
        # Moving statistics, no dropout: a plain call is what predict computes.
        np.testing.assert_allclose(np.asarray(model(x)), predict(model, x), rtol=1e-6, atol=1e-6)
        save_checkpoint(tmp_path / type(model).__name__, model)
        twin = type(model)(rngs=nnx.Rngs(1)) if isinstance(model, Net) else model
        twin.train()
        restored = restore(tmp_path / type(model).__name__, twin)
        np.testing.assert_allclose(np.asarray(restored(x)), predict(model, x), rtol=1e-6, atol=1e-6)


def test_register_takes_functions_and_classes_and_refuses_a_clash():
    @register(name="test_own_function")
    def built(width: int = 2, seed: int = 0):
        return Sequential([Dense(3, width, rngs=nnx.Rngs(seed))])

    assert build_model("test_own_function", width=5).dense.kernel.shape == (3, 5)
    model = Net(rngs=nnx.Rngs(0))
    assert not hasattr(model, "build_config")  # unregistered: built by hand, nothing recorded
    with pytest.raises(ValueError, match="already registered by .*built"):
        register(name="test_own_function")(lambda: None)


def test_load_model_in_a_new_process_only_from_trusted_modules(tmp_path):
    (tmp_path / "mymodels.py").write_text(MYMODELS)
    train = textwrap.dedent("""
        import numpy as np, optax
        from flax import nnx
        from mymodels import TinyResNet
        from jaxvision.train import ModelCheckpoint, fit, predict
        x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype(np.float32)
        y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
        model = TinyResNet(width=4, rngs=nnx.Rngs(0))
        fit(model, (x, y), epochs=1, loss="sparse_categorical_crossentropy", optimizer=optax.adam(0.01),
            batch_size=8, verbose=0, callbacks=[ModelCheckpoint("ckpt")])
        np.save("expected.npy", predict(model, x))
        """)
    load = textwrap.dedent("""
        import sys, numpy as np
        from jaxvision.train import load_model
        try:
            load_model("ckpt")
        except ValueError as error:
            print("REFUSED:", error)
        model = load_model("ckpt", trusted_modules=("mymodels",))
        x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype(np.float32)
        print(type(model).__name__, model.bn.use_running_average, sys.modules["mymodels"].__name__)
        np.testing.assert_allclose(np.asarray(model(x)), np.load("expected.npy"), rtol=1e-6, atol=1e-6)
        """)
    run = lambda code: subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,  # noqa: E731
                                      text=True, env={"PYTHONPATH": str(tmp_path), **_env()}, timeout=300)
    assert run(train).returncode == 0
    (tmp_path / "other").mkdir()  # the loader's directory: mymodels is importable but not imported
    done = subprocess.run([sys.executable, "-c", load.replace('"ckpt"', '"../ckpt"').replace(
        '"expected.npy"', '"../expected.npy"')], cwd=tmp_path / "other", capture_output=True, text=True,
        env={"PYTHONPATH": str(tmp_path), **_env()}, timeout=300)
    assert done.returncode == 0, done.stderr
    refused, loaded = done.stdout.strip().splitlines()
    assert "defined in module 'mymodels', which is not imported" in refused
    assert "trusted_modules=('mymodels',)" in refused
    assert loaded == "TinyResNet True mymodels"


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_a_script_registered_model_gets_a_clear_error(tmp_path):
    from jaxvision.models.registry import rebuild_model

    config = '{"kwargs": {}, "module": "__main__", "name": "not_here"}'
    with pytest.raises(ValueError, match=r"registered in a script \(__main__\).*move the builder into a module"):
        rebuild_model(config, source="checkpoint x")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        rebuild_model('{"kwargs": {}, "module": "no_such_module_xyz", "name": "not_here"}',
                      trusted_modules=("no_such_module_xyz",))


def nested_model() -> tuple[Sequential, Sequential]:
    """The shape of the book's end-to-end model (after listing 8.29): preprocessing → backbone (a model) → pooling → classifier; and
    the same layer objects in one flat model."""
    rescale = Rescaling(1 / 4)
    conv, conv_1 = (Conv2D(3, 4, 3, activation="relu", rngs=nnx.Rngs(1)),
                    Conv2D(4, 6, 3, activation="relu", rngs=nnx.Rngs(2)))
    pool, dense = GlobalAveragePooling2D(), Dense(6, 3, activation="softmax", rngs=nnx.Rngs(3))
    backbone = Sequential([conv, conv_1])
    nested = Sequential([("rescaling", rescale), ("backbone", backbone), ("pool", pool), ("dense", dense)])
    flat = Sequential([("rescaling", rescale), ("conv2d", conv), ("conv2d_1", conv_1), ("pool", pool),
                       ("dense", dense)])
    return nested, flat


def test_nested_layers_are_explained_by_path():
    nested, flat = nested_model()
    x = images(2, 10)
    _, found = nested.intermediates(jnp.asarray(x), ["backbone/conv2d_1", "backbone"])
    np.testing.assert_array_equal(found["backbone/conv2d_1"], found["backbone"])
    np.testing.assert_allclose(grad_cam(nested, x, "backbone/conv2d"), grad_cam(flat, x, "conv2d"), rtol=1e-6,
                               atol=1e-7)
    assert float(grad_cam(nested, x, "backbone/conv2d").max()) == 1.0
    np.testing.assert_allclose(activations(nested, x, ["backbone/conv2d"])["backbone/conv2d"],
                               activations(flat, x, ["conv2d"])["conv2d"], rtol=1e-6)
    ours = visualize_filters(nested, "backbone/conv2d_1", [0, 2], image_size=10, steps=3)
    np.testing.assert_allclose(ours, visualize_filters(flat, "conv2d_1", [0, 2], image_size=10, steps=3),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="available: .*'backbone/conv2d'"):
        grad_cam(nested, x, "backbone/nope")


def test_summary_lists_every_sublayer_with_shapes_and_counts():
    nested, _ = nested_model()
    text = summary(nested, (1, 10, 10, 3), print_fn=None)
    rows, totals = summary_cells(text)
    assert rows[1:8] == [["input_layer (InputLayer)", "(None, 10, 10, 3)", "0"],
                         ["rescaling (Rescaling)", "(None, 10, 10, 3)", "0"],
                         ["backbone (Sequential)", "(None, 6, 6, 6)", "334"],
                         ["conv2d (Conv2D)", "(None, 8, 8, 4)", "112"],
                         ["conv2d_1 (Conv2D)", "(None, 6, 6, 6)", "222"],
                         ["pool (GlobalAveragePooling2D)", "(None, 6)", "0"],
                         ["dense (Dense)", "(None, 3)", "21"]]
    assert "│   conv2d (Conv2D)" in text  # nested rows are indented
    assert totals == ["Total params: 355 (1.39 KB)", "Trainable params: 355 (1.39 KB)", "Non-trainable params: 0 (0.00 B)"]
    # Layers inside a composite layer, and a single layer, get rows too.
    rows, _ = summary_cells(summary(build_model("mini_xception"), (1, 64, 64, 3), print_fn=None))
    assert ["block1_sepconv1 (SeparableConv2D)", "(None, 60, 60, 32)", "1,312", "block1_act1[0][0]"] in rows
    rows, _ = summary_cells(summary(Dense(3, 4, rngs=nnx.Rngs(0)), (1, 3), print_fn=None))
    assert rows[2] == ["Dense (Dense)", "(None, 4)", "16"]


def test_duplicate_tap_names_are_a_named_error():
    class Twice(Model):
        def __init__(self):
            self.dense = Dense(3, 3, rngs=nnx.Rngs(0))

        def forward(self, x, tap):
            return tap("dense", self.dense(tap("dense", self.dense(x))))

    with pytest.raises(DuplicateTapName, match="tapped 'dense' twice"):
        summary(Twice(), (1, 3), print_fn=None)
