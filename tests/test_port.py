"""jaxvision.port: the port check ``make port-check`` runs on registered models, for a model of
one's own: the function on a model no registry knows, the command as the own-model guide
writes it, and one-line errors for a bad MODULE:FACTORY."""

import re
from pathlib import Path

import jax.numpy as jnp
import pytest
from flax import nnx

from jaxvision.layers import BatchNormalization, Dense, GlobalAveragePooling2D, SeparableConv2D
from jaxvision.models import Model
from jaxvision.port import MESH, PLATFORMS, main

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "own-model.md"


class UnregisteredNet(Model):
    """A model of one's own, not registered anywhere."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.sep = SeparableConv2D(3, 4, 3, padding="same", use_bias=False, rngs=rngs)
        self.bn = BatchNormalization(4, rngs=rngs)
        self.pool = GlobalAveragePooling2D()
        self.head = Dense(4, 3, activation="softmax", rngs=rngs)

    def forward(self, x, tap):
        return tap("head", self.head(self.pool(nnx.relu(self.bn(self.sep(x))))))


def test_a_model_no_registry_knows_passes_the_check():
    from jaxvision.port import check

    found = check(UnregisteredNet(rngs=nnx.Rngs(0)), input_shape=(8, 8, 3), loss="sparse_categorical_crossentropy",
                  estimate=False)
    assert str(found) == "UnregisteredNet: lowers for tpu and cuda, float32 and bfloat16, 8-device mesh"
    for policy, compute in (("float32", "f32"), ("mixed_bfloat16", "bf16")):
        train, predict = found.exported[policy]
        assert train.platforms == PLATFORMS == predict.platforms and train.nr_devices == MESH.size == 8
        # labels follow the loss: one int per example for the sparse cross-entropy
        assert [a.shape for a in train.in_avals][-2:] == [(8, 8, 8, 3), (8,)] and train.in_avals[-1].dtype == jnp.int32
        assert predict.out_avals[0].shape == (8, 3)
        assert f"tensor<8x8x8x4x{compute}>" in predict.mlir_module()  # the separable conv computes in the policy
    assert found.cost is None


def test_the_command_runs_as_the_own_model_guide_writes_it(tmp_path, monkeypatch, capsys):
    code = dict(re.findall(r'```python title="(\S+\.py)"\n(.*?)```', GUIDE.read_text(), flags=re.S))["mymodels.py"]
    (tmp_path / "mymodels.py").write_text(code)
    (command,) = re.findall(r"^(python -m jaxvision\.port .*)$", GUIDE.read_text(), flags=re.M)
    monkeypatch.syspath_prepend(str(tmp_path))  # where `python -m` finds the module: the current folder
    assert main(command.split()[3:]) == 0
    report = capsys.readouterr().out
    assert report.startswith("TinyResNet: lowers for tpu and cuda, float32 and bfloat16, 8-device mesh\n")
    gflop, gbytes = map(float, re.search(r"one float32 train step of 8 × \(16, 16, 3\): ([\d.e-]+) GFLOP, ([\d.e-]+) GB; "
                                         r"estimated H100 [\d.e-]+ ms, H200 ", report).groups())
    # At least the multiply-adds (2 FLOPs each) of its two 3x3 convolutions at 16x16 over 8 examples:
    # forward and kernel gradient of the stem (3→8), forward, kernel and input gradients of conv (8→8).
    convolution = 2 * 8 * 16 * 16 * 9
    assert gflop * 1e9 >= convolution * (2 * 3 * 8 + 3 * 8 * 8) and gbytes > 0
    assert report.rstrip().endswith("[loss binary_crossentropy]")  # guessed from the single output


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:Net", r"'no_such_module_xyz:Net': cannot import module 'no_such_module_xyz'"),
    ("jaxvision.layers:NoSuchNet", r"'jaxvision.layers:NoSuchNet': module 'jaxvision.layers' \(.*\) has no "
                                   r"function or class 'NoSuchNet'"),
    ("NoSuchNet", r"'NoSuchNet' is neither MODULE:FACTORY nor a registered model \(registered: .*mnist_convnet"),
    (":Net", r"':Net': expected MODULE:FACTORY"),
])
def test_a_bad_factory_is_one_line_and_exit_status_2(spec, message, capsys):
    assert main([spec, "--input-shape", "8,8,3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.match("error: " + message, err), err
