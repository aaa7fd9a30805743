"""The divergence finder locates injected faults at the right layer — forward (a wrong BN
epsilon, a transposed kernel, a padding change, a moving variance never loaded) and backward
(an activation with a wrong derivative) — in MobileNet, the mini-Xception and the segmenter,
reports nothing on the real weights, and maps precision and device drift."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.applications import MobileNet, preprocess_input
from jaxvision.data import data_root
from jaxvision.debug import compare, drift
from jaxvision.models import build_model
from jaxvision.weights import save_keras_weights
from forced_devices import forced_cpu_devices
from keras_twins import keras_mini_xception, keras_segmenter, keras_sepbn_net
from own_layer import fork_module

NO_TOP = "mobilenet_2_5_224_tf_no_top.h5"
SIZE = 32


@pytest.fixture(scope="module")
def mobilenets(keras):
    path = data_root() / "pretrained" / NO_TOP
    if not path.exists():
        pytest.skip(f"{path} is not in the shared data")
    # Keras's smallest MobileNet input: every layer, a quarter of the work of 64 × 64.
    reference = keras.applications.MobileNet(input_shape=(SIZE, SIZE, 3), alpha=0.25, include_top=False,
                                             weights=str(path))
    x = preprocess_input(np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32))
    loaded = MobileNet(alpha=0.25, include_top=False, weights=str(path))
    return lambda: nnx.clone(loaded), reference, x


def test_real_weights_are_identical_forward_and_backward(mobilenets):
    build, reference, x = mobilenets
    report = compare(build(), reference, x, grads=True)
    assert report.identical, str(report)
    names = [row.name for row in report.rows]
    assert names[:2] == ["conv1", "conv1_bn"] and "conv_pw_13_relu" in names and names[-1] == "d/d input"
    weights = [n for n in names if n.startswith("d/d ") and "/" in n[4:] and not n.endswith("(output)")]
    assert len(weights) == 3 + 13 * 6  # every trainable weight
    assert "d/d conv_pw_13_relu (output)" in names and "d/d conv1 (output)" in names  # every layer's output
    assert str(report).splitlines()[-1].startswith("identical to 1e-05 at every one of")


def _transpose_pointwise(model, name):
    kernel = getattr(model, name).kernel
    kernel[...] = jnp.swapaxes(kernel[...], 2, 3)


@pytest.mark.parametrize("fault, layer", [
    ("epsilon", "conv_dw_5_bn"), ("transposed", "conv_pw_3"), ("padding", "conv_pad_4"),
    ("moving_variance", "conv_pw_7_bn")])
def test_forward_faults_are_located_in_mobilenet(mobilenets, fault, layer):
    build, reference, x = mobilenets
    model = build()
    if fault == "epsilon":
        model.conv_dw_5_bn.epsilon = 1e-1
    elif fault == "transposed":
        _transpose_pointwise(model, "conv_pw_3")  # (1, 1, 32, 32): loads, runs, computes something else
    elif fault == "padding":
        model.conv_pad_4.padding = ((1, 0), (1, 0))  # Keras pads ((0, 1), (0, 1)) before a stride-2 conv
    else:
        model.conv_pw_7_bn.moving_variance[...] = jnp.ones_like(model.conv_pw_7_bn.moving_variance[...])
    report = compare(model, reference, x)
    assert report.first_divergence.name == layer, str(report)
    assert all(row.ok for row in report.rows[:-1]) and report.rows[-1].name == layer


def test_a_backward_fault_is_located_from_the_output(mobilenets):
    build, reference, x = mobilenets
    model = build()

    @jax.custom_jvp
    def relu6(v):
        return jnp.clip(v, 0, 6)

    relu6.defjvp(lambda primals, tangents: (relu6(primals[0]), 0.5 * tangents[0] * (primals[0] > 0)
                                                                                 * (primals[0] < 6)))
    model.conv_pw_5_relu.activation_fn = relu6  # the forward pass is exact, its derivative is half
    report = compare(model, reference, x, grads=True)
    forward = [row for row in report.rows if not row.name.startswith("d/d")]
    assert all(row.ok for row in forward) and forward[-1].name == "output"
    # Seen from the output, the first wrong gradient is at the layer feeding the faulty activation
    # (the gradient with respect to the faulty activation's input is the first one that is wrong)
    assert report.first_divergence.name == "d/d conv_pw_5_bn (output)", str(report)


@pytest.fixture
def fresh_keras(keras):
    keras.backend.clear_session()  # Keras's automatic names start again at conv2d, as jaxvision's
    return keras


def test_faults_are_located_in_the_mini_xception_and_the_segmenter(fresh_keras, tmp_path):
    keras = fresh_keras
    model, twin = build_model("mini_xception", augmented=False), keras_mini_xception(keras, 32)
    save_keras_weights(model, tmp_path / "m.weights.h5")
    twin.load_weights(tmp_path / "m.weights.h5")
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    assert compare(model, twin, x).identical
    model.block3_bn2.epsilon = 0.5
    assert compare(model, twin, x).first_divergence.name == "block3_bn2"
    assert compare(model, twin, x, training=True).first_divergence.name == "block3_bn2"  # batch statistics too

    keras.backend.clear_session()
    model, twin = build_model("segmentation_model", image_size=[32, 32]), keras_segmenter(keras, (32, 32))
    save_keras_weights(model, tmp_path / "s.weights.h5")
    twin.load_weights(tmp_path / "s.weights.h5")
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    # Forward only: gradients through every layer kind here are checked in tests/layers and, whole, in MobileNet.
    assert compare(model, twin, x).identical
    kernel = model.conv2d_transpose.kernel  # (3, 3, 256, 256): (kh, kw, out, in)
    kernel[...] = jnp.swapaxes(kernel[...], 2, 3)
    report = compare(model, twin, x, grads=True)  # a forward fault: the gradients are not compared, and said so
    assert report.first_divergence.name == "conv2d_transpose", str(report)
    assert report.skipped["gradients"] == "after the first divergence (stop_at_first=True)"


def test_command_line_prints_the_table_and_sets_the_exit_status(mobilenets, tmp_path, capsys):
    from jaxvision.debug.__main__ import main

    _, reference, _ = mobilenets
    reference.save(tmp_path / "m.keras")
    argv = ["compare", "--keras", str(tmp_path / "m.keras"), "--jaxvision", "mobilenet", "--arg", "alpha=0.25",
            "--arg", "include_top=false", "--preprocess", "tf"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "shape", "max", "abs", "max", "rel"]
    assert lines[-1].startswith("identical to 1e-05 at every one of")
    save_keras_weights(MobileNet(alpha=0.25, include_top=False, seed=3), tmp_path / "other.weights.h5")
    assert main(argv + ["--weights", str(tmp_path / "other.weights.h5")]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("first divergence: conv1 ")
    assert main(argv[:-4] + ["--jaxvision", "no_such_model"]) == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err


def test_precision_and_device_drift_maps(mobilenets):
    build, _, x = mobilenets
    model = build()
    report = drift(model, x, policy="mixed_bfloat16")
    assert report.tolerance == 1e-2 and len(report.rows) == len(model.layer_shapes(x.shape)) + 1
    assert 1e-4 < report.rows[1].max_rel < 0.1  # conv1 in bfloat16: moved, but by rounding only
    # One device against eight: a small convnet with BatchNorm is enough to map the mesh.
    code = textwrap.dedent("""
        import numpy as np, jax
        from flax import nnx
        from jax.sharding import Mesh
        from jaxvision.debug import drift
        from jaxvision.layers import BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D
        from jaxvision.models import Sequential
        rngs = nnx.Rngs(0)
        model = Sequential([Conv2D(3, 8, 3, rngs=rngs), BatchNormalization(8, rngs=rngs), GlobalAveragePooling2D(),
                            Dense(8, 2, rngs=rngs)])
        x = np.random.default_rng(0).uniform(-1, 1, (8, 12, 12, 3)).astype(np.float32)
        report = drift(model, x, mesh=Mesh(np.array(jax.devices()), ("data",)))
        print(len(jax.devices()), report.identical, *[row.name for row in report.rows])
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=forced_cpu_devices(8),
                          timeout=300)
    assert done.stdout.split() == ["8", "True", "conv2d", "batch_normalization", "global_average_pooling2d", "dense",
                                   "output"], done.stderr


def test_the_experiment_compares_mobilenet_with_keras_on_the_elephant(tmp_path, capsys):
    import debug_compare_mobilenet

    if not (data_root() / "images" / "elephant.jpg").exists():
        pytest.skip("the elephant is not in the shared data")
    metrics = debug_compare_mobilenet.main(["--out", str(tmp_path)])
    assert metrics["identical"] and metrics["first_divergence"] is None and metrics["compared"] > 80
    assert metrics["top3"]["jaxvision"][0][0] == metrics["top3"]["keras"][0][0] == "African_elephant"
    assert (tmp_path / "errors.png").stat().st_size > 10_000 and (tmp_path / "report.txt").is_file()
    assert "identical to 1e-05 at every one of" in capsys.readouterr().out


def test_a_nested_model_is_compared_by_path(mobilenets, keras, tmp_path):
    """The shape of the book's end-to-end model (after listing 8.29) on both sides: the backbone's layers are matched as
    ``backbone/conv1`` ↔ ``<keras backbone name>/conv1`` (``rename``), forward and backward."""
    from jaxvision.layers import Dense, GlobalAveragePooling2D
    from jaxvision.models import Sequential

    build, base, x = mobilenets
    keras.backend.clear_session()  # the head's automatic names start again at dense, as jaxvision's
    twin = keras.Sequential([keras.Input(x.shape[1:]), base, keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(1, activation="sigmoid")])
    model = Sequential([("backbone", build()), GlobalAveragePooling2D(),
                        Dense(256, 1, activation="sigmoid", rngs=nnx.Rngs(0))])
    save_keras_weights(model, tmp_path / "m.weights.h5")
    twin.load_weights(tmp_path / "m.weights.h5")
    report = compare(model, twin, x, grads=True, rename={"backbone": base.name})
    assert report.identical and not report.unmatched, str(report)
    assert "backbone/conv_pw_13_relu" in [row.name for row in report.rows]


def test_the_tolerance_follows_the_compute_dtype_not_the_weights():
    """A mixed_bfloat16 model stores float32 weights but computes in bfloat16: compared with
    its float32 twin it is judged at the bfloat16 tolerance, and within it."""
    from jaxvision.debug import jaxvision_intermediates
    from jaxvision.layers import Conv2D, policy_scope
    from jaxvision.models import Sequential

    with policy_scope("mixed_bfloat16"):
        model = Sequential([Conv2D(3, 4, 3, rngs=nnx.Rngs(0)), Conv2D(4, 2, 3, rngs=nnx.Rngs(1))])
    twin = Sequential([Conv2D(3, 4, 3, rngs=nnx.Rngs(0)), Conv2D(4, 2, 3, rngs=nnx.Rngs(1))])
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    report = compare(model, jaxvision_intermediates(twin), x)
    assert report.tolerance == 1e-2 and report.identical, str(report)
    assert max(row.max_rel for row in report.rows) > 1e-5  # bfloat16 rounding is really there
    assert compare(model, jaxvision_intermediates(twin), x, dtype="float32").first_divergence is not None


@pytest.fixture(scope="module")
def raw_pixel_twins(keras, tmp_path_factory):
    """The own-model guide's forked layer (a BatchNormalization after the pointwise step)
    behind a Rescaling of 0–255 pixels, as the book's models take them, and its Keras twin
    (a custom layer) with the same weights."""
    from jaxvision.layers import Rescaling
    from jaxvision.models import Sequential

    fork = fork_module()
    rngs = nnx.Rngs(0)
    model = Sequential([Rescaling(1 / 255), ("sepbn", fork.SeparableConvBN(3, 8, 3, activation="relu", rngs=rngs)),
                        ("sepbn_1", fork.SeparableConvBN(8, 8, 3, padding="same", rngs=rngs))])
    rng = np.random.default_rng(0)
    for layer in (model.sepbn.pointwise_bn, model.sepbn_1.pointwise_bn):  # statistics as after training
        layer.moving_mean[...] = jnp.asarray(rng.normal(0, 0.1, 8), jnp.float32)
        layer.moving_variance[...] = jnp.asarray(rng.uniform(0.5, 1.5, 8), jnp.float32)
    keras.backend.clear_session()
    twin = keras_sepbn_net(keras, 12, rescale=True)
    path = tmp_path_factory.mktemp("raw") / "m.weights.h5"
    save_keras_weights(model, path)
    twin.load_weights(path)
    x = rng.uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    return model, twin, x


def test_a_faithful_custom_layer_twin_is_clean_and_nothing_is_skipped_silently(raw_pixel_twins):
    model, twin, x = raw_pixel_twins
    report = compare(model, twin, x, grads=True)
    assert report.identical, str(report)
    names = [row.name for row in report.rows]
    assert names[:4] == ["rescaling", "sepbn", "sepbn_1", "output"]
    weights = sorted(n for n in names if n.startswith("d/d ") and not n.endswith("(output)") and n != "d/d input")
    assert weights == sorted(f"d/d {layer}/{w}" for layer in ("sepbn", "sepbn_1") for w in (
        "depthwise_kernel", "pointwise_kernel", "pointwise_bn/gamma", "pointwise_bn/beta"))  # every weight
    assert report.skipped == {
        "sepbn/pointwise_bn": "only jaxvision has it", "sepbn_1/pointwise_bn": "only jaxvision has it",
        **{f"d/d {layer}/pointwise_bn/{stat}": "a BatchNorm statistic, not a trained weight: no gradient"
           for layer in ("sepbn", "sepbn_1") for stat in ("moving_mean", "moving_variance")}}
    lines = str(report).splitlines()
    assert lines[-4:-1] == ["not compared (6):", "  only jaxvision has it: sepbn/pointwise_bn, sepbn_1/pointwise_bn",
                            "  a BatchNorm statistic, not a trained weight: no gradient: " + ", ".join(
                                f"d/d {layer}/pointwise_bn/{stat}" for layer in ("sepbn", "sepbn_1")
                                for stat in ("moving_mean", "moving_variance"))]
    assert lines[-1] == f"identical to 1e-05 at every one of {len(report.rows)} compared tensors"


@pytest.mark.parametrize("fault", ["output", "epsilon"])
def test_a_1e_4_fault_behind_a_rescaling_of_raw_pixels_is_flagged(raw_pixel_twins, fault):
    """The input spans 0–255 but the layers after the Rescaling work on ~1: judged on the
    input's scale (as before), a 1e-4 error there passed as identical."""
    model, twin, x = raw_pixel_twins
    faulty = nnx.clone(model)
    bn = faulty.sepbn.pointwise_bn
    if fault == "output":  # every output of the layer 1e-4 too large (the ReLU commutes with it)
        bn.gamma[...] = bn.gamma[...] * (1 + 1e-4)
        bn.beta[...] = bn.beta[...] * (1 + 1e-4)
    else:  # the fault: a BatchNormalization epsilon that differs from the twin's
        bn.epsilon = 2e-3
    report = compare(faulty, twin, x)
    assert report.first_divergence.name == "sepbn", str(report)
    assert 1e-5 < report.first_divergence.max_rel < 1e-3
    assert report.skipped["sepbn_1"] == report.skipped["output"] == "after the first divergence (stop_at_first=True)"


def test_keras_is_set_up_on_jax_or_the_error_says_how(keras, monkeypatch):
    from jaxvision.debug.compare import keras_on_jax

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.delitem(sys.modules, "keras")  # not imported yet: compare chooses the backend
    assert keras_on_jax().backend.backend() == "jax" and os.environ["KERAS_BACKEND"] == "jax"
    monkeypatch.setattr(sys.modules["keras"].backend, "backend", lambda: "tensorflow")
    with pytest.raises(RuntimeError, match="imported with the 'tensorflow' backend; set KERAS_BACKEND=jax before"):
        keras_on_jax()


def test_a_gradient_split_by_an_activation_kink_is_flagged_and_explained(fresh_keras, tmp_path):
    """Forward passes within rounding, one unit's pre-activation at ±1e-9 on the two sides:
    ReLU's derivative there is 1 on one side and 0 on the other (as float rounding does to
    MobileNet's conv_pw_3_bn on the elephant). The report says so instead of only diverging."""
    from jaxvision.layers import Activation, Dense
    from jaxvision.models import Sequential

    keras = fresh_keras
    rngs = nnx.Rngs(0)
    model = Sequential([Dense(2, 3, rngs=rngs), Activation("relu"), Dense(3, 1, rngs=rngs)])
    model.dense.kernel[...] = model.dense.kernel[...].at[:, 0].set(0.0)  # unit 0 is its bias alone
    twin = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), keras.layers.Activation("relu"),
                             keras.layers.Dense(1)])
    save_keras_weights(model, tmp_path / "m.weights.h5")
    twin.load_weights(tmp_path / "m.weights.h5")
    model.dense.bias[...] = model.dense.bias[...].at[0].set(1e-9)
    twin.layers[0].bias.assign(np.asarray(model.dense.bias[...]) * np.array([-1.0, 1.0, 1.0], np.float32))
    report = compare(model, twin, np.array([[1.0, 2.0], [-1.0, 0.5]], np.float32), grads=True)
    assert all(row.ok for row in report.rows if not row.name.startswith("d/d")), str(report)
    assert report.first_divergence.name == "d/d dense (output)", str(report)
    assert report.notes["d/d dense (output)"].startswith(
        "2 of 6 elements of dense's output lie on opposite sides of an activation kink (2 at 0)")
    assert str(report).splitlines()[-2].startswith("note on d/d dense (output): 2 of 6 elements")



def test_a_padding_after_relu6_is_judged_on_the_scale_its_input_was():
    """A rounding error of a tensor of magnitude 40 (a BatchNorm output), through ReLU6 (range 6)
    and a ZeroPadding2D (range still 6): it passes at the padding as at the ReLU6. Judged on the
    ReLU6's range alone, the padding called it a divergence (MobileNet's conv_pad_4 on the
    elephant, with XLA's unoptimised code generation)."""
    from jaxvision.layers import Activation, Rescaling, ZeroPadding2D
    from jaxvision.models import Sequential

    model = Sequential([Rescaling(1.0), Activation("relu6"), ZeroPadding2D(((1, 0), (1, 0)))])
    x = np.array([40.0, 3.0, -2.0, 1.0], np.float32).reshape(1, 2, 2, 1)
    error = np.array([0, 1e-4, 0, 0], np.float32).reshape(1, 2, 2, 1)  # 2.3e-6 of 3 + 40, 1.1e-5 of 3 + 6

    def reference(inputs, pad_fault=0.0):
        scaled = inputs + error
        padded = np.pad(np.clip(scaled, 0, 6), ((0, 0), (1, 0), (1, 0), (0, 0)))
        padded = padded + pad_fault * np.pad(error, ((0, 0), (1, 0), (1, 0), (0, 0)))
        return {"rescaling": scaled, "activation": np.clip(scaled, 0, 6), "zero_padding2d": padded, "output": padded}

    report = compare(model, reference, x)
    assert [row.name for row in report.rows] == ["rescaling", "activation", "zero_padding2d", "output"]
    assert report.identical and 1e-6 < report.rows[2].max_rel < 1e-5, str(report)
    faulty = compare(model, lambda inputs: reference(inputs, pad_fault=10.0), x)  # 1e-3 more at the padding
    assert faulty.first_divergence.name == "zero_padding2d", str(faulty)
