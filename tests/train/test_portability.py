"""Lowering checks for TPU and GPU without the hardware: the train step that ``fit`` runs
(forward, loss, backward, Keras's Adam, metrics), for every registered model, in float32 and
under ``mixed_bfloat16``, data-parallel over an abstract 8-device mesh, is exported with
``jax.export`` for ``("tpu", "cuda")``; so are ``predict`` and Grad-CAM. Models are built
abstractly (``nnx.eval_shape``): only tracing and lowering, nothing is compiled or run. The
checks are ``bench/port_check.py``'s, which ``make port-check`` runs with step-cost estimates."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxvision.models import build_model
from jaxvision.models.registry import registered
from port_check import MESH, MODELS, PLATFORMS, PORT_CHECK_ONLY, export_steps


def test_every_registered_model_is_checked():
    builtin = [name for name, module in registered().items()  # not the models other tests register
               if module.startswith("jaxvision.") and not name.startswith("doctest_")]
    assert sorted(MODELS) == sorted(builtin)


def _abstract(tree, spec):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a),
                                                       sharding=NamedSharding(MESH, spec)), tree)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("name", sorted(set(MODELS) - PORT_CHECK_ONLY))
def test_the_train_step_lowers_for_tpu_and_cuda_on_an_8_device_mesh(name, policy):
    exported, predict = export_steps(name, policy)
    assert exported.platforms == PLATFORMS and exported.nr_devices == 8
    text = exported.mlir_module()
    # Lowered, not compiled: the 8-device mesh and the batch's split over "data" are in the module;
    # XLA adds the collectives (the gradients' all-reduce) when it compiles for the platform.
    assert 'sdy.mesh @mesh = <["data"=8]>' in text and 'sdy.sharding<@mesh, [{"data"}' in text
    assert predict.out_avals[0].shape[0] == MODELS[name][1][0]


def test_a_step_that_does_not_lower_is_named(monkeypatch):
    import jaxvision.layers.pooling as pooling

    def host_callback(self, x):  # a host callback: it cannot be exported for tpu/cuda
        return jax.pure_callback(lambda a: a, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    monkeypatch.setattr(pooling.GlobalAveragePooling2D, "__call__", host_callback)
    with pytest.raises(RuntimeError, match=r"mnist_convnet \(float32\): the train/predict step does not lower "
                                           r"for \('tpu', 'cuda'\)"):
        export_steps("mnist_convnet", "float32")


def _replicated(tree):
    return _abstract(tree, P())


@pytest.mark.parametrize("name", ["mobilenet", "mini_xception", "mobilenet_unet"])
def test_grad_cam_and_filter_visualisation_lower_for_tpu_and_cuda(name):
    from jaxvision.interpret.filters import _ascend_many
    from jaxvision.interpret.gradcam import _score_gradient

    kwargs, shape, _, _ = MODELS[name]
    model = nnx.eval_shape(lambda: build_model(name, **kwargs))
    model.eval()
    graphdef, state = nnx.split(model)
    # The U-Net's score is a segmentation output's: the class summed over its predicted region.
    layer = {"mobilenet": "conv_pw_13_relu", "mini_xception": "block4_sepconv2", "mobilenet_unet": "up2_relu"}[name]
    images = jax.ShapeDtypeStruct(shape, jnp.float32)
    exported = jax.export.export(_score_gradient, platforms=PLATFORMS)(
        graphdef, _replicated(state), images, jax.ShapeDtypeStruct(shape[:1], jnp.int32), layer, False)
    assert [a.shape[0] for a in exported.out_avals] == [shape[0]] * 2  # activation and its gradient
    starts = jax.ShapeDtypeStruct((4, *shape[1:]), jnp.float32)
    exported = jax.export.export(_ascend_many, platforms=PLATFORMS)(
        graphdef, _replicated(state), layer, starts, jax.ShapeDtypeStruct((4,), jnp.int32), 10.0, 255.0, 3, 1)
    assert exported.out_avals[0].shape == (4, *shape[1:])


def test_segment_anything_inference_lowers_for_tpu_and_cuda():
    from jaxvision.models.segment_anything import CONFIGS, Sam
    from jaxvision.models.segment_anything.predictor import predict_masks

    sam = nnx.eval_shape(lambda: Sam(CONFIGS["tiny"], rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(sam)
    size = CONFIGS["tiny"].image_size

    def embed(state, images):
        return nnx.merge(graphdef, state).embed(images)

    def decode(state, embedding, points, labels, boxes):
        return predict_masks(nnx.merge(graphdef, state), embedding, points, labels, boxes, None,
                             multimask_output=True, input_size=(size, size), original_size=(60, 80))

    encoded = jax.export.export(jax.jit(embed), platforms=PLATFORMS)(
        _replicated(state), jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
    embedding = encoded.out_avals[0]
    decoded = jax.export.export(jax.jit(decode), platforms=PLATFORMS)(
        _replicated(state), jax.ShapeDtypeStruct(embedding.shape, embedding.dtype),
        jax.ShapeDtypeStruct((5, 1, 2), jnp.float32), jax.ShapeDtypeStruct((5, 1), jnp.int32),
        jax.ShapeDtypeStruct((5, 4), jnp.float32))
    assert [a.shape for a in decoded.out_avals][:2] == [(5, 3, 60, 80), (5, 3)]


def test_two_hosts_of_four_devices_lower_the_same_step_as_one_host_of_eight():
    """fit's default mesh over 2 processes × 4 devices (jax.distributed on localhost) gives the
    train step that 1 process × 8 devices gives, byte for byte: multi-host changes where rows
    are loaded, not the step."""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from forced_devices import forced_cpu_devices

    runner = Path(__file__).with_name("lower_run.py")
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    commands = [([sys.executable, str(runner)], forced_cpu_devices(8))] + [
        ([sys.executable, str(runner), "--process", str(i), "--processes", "2", "--coordinator", f"localhost:{port}"],
         forced_cpu_devices(4)) for i in range(2)]
    procs = [subprocess.Popen(c, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c, e in commands]
    outputs = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr[-3000:]
            outputs.append([line.split() for line in stdout.splitlines()])
    finally:
        for proc in procs:
            proc.kill()
    one_host, *two_hosts = outputs
    assert [row[:4] for row in one_host] == [["float32", "1", "8", "8"], ["mixed_bfloat16", "1", "8", "8"]]
    for rows in two_hosts:
        assert [row[:4] for row in rows] == [["float32", "2", "8", "8"], ["mixed_bfloat16", "2", "8", "8"]]
        assert [row[4] for row in rows] == [row[4] for row in one_host]
    assert one_host[0][4] != one_host[1][4]  # the policy does change the step
