"""Lowering checks for TPU and GPU without the hardware: the train step that ``fit`` runs
(forward, loss, backward, Keras's Adam, metrics), for every registered model, in float32 and
under ``mixed_bfloat16``, data-parallel over an abstract 8-device mesh, is exported with
``jax.export`` for ``("tpu", "cuda")``; so are ``predict`` and Grad-CAM. Models are built
abstractly (``nnx.eval_shape``): only tracing and lowering, nothing is compiled or run."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from jax.sharding import AbstractMesh, AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxvision.layers import policy_scope
from jaxvision.models import build_model
from jaxvision.models.registry import registered
from jaxvision.optimizers import get_optimizer
from jaxvision.train.losses import get_loss
from jaxvision.train.metrics import get_metric
from jaxvision.train.sharding import Placement
from jaxvision.train.steps import Carry, get_steps, init_sums, split, stream_tags

MESH = AbstractMesh((8,), ("data",), axis_types=(AxisType.Auto,))
PLATFORMS = ("tpu", "cuda")
# name → (builder arguments, input shape of one 8-device batch, loss, label shape)
MODELS = {
    "mnist_convnet": ({}, (8, 28, 28, 1), "sparse_categorical_crossentropy", (8,)),
    "dogs_vs_cats_convnet": ({"augmented": True}, (8, 80, 80, 3), "binary_crossentropy", (8,)),
    "residual_convnet": ({}, (8, 32, 32, 3), "binary_crossentropy", (8,)),
    "mini_xception": ({}, (8, 64, 64, 3), "binary_crossentropy", (8,)),
    "segmentation_model": ({"image_size": [32, 32]}, (8, 32, 32, 3), "sparse_categorical_crossentropy", (8, 32, 32)),
    "residual_segmentation_model": ({"image_size": [32, 32]}, (8, 32, 32, 3), "sparse_categorical_crossentropy",
                                    (8, 32, 32)),
    "mobilenet": ({"alpha": 0.25, "classes": 10}, (8, 64, 64, 3), "sparse_categorical_crossentropy", (8,)),
    "xception": ({"classes": 10}, (8, 71, 71, 3), "sparse_categorical_crossentropy", (8,)),
}


def test_every_registered_model_is_checked():
    builtin = [name for name, module in registered().items()  # not the models other tests register
               if module.startswith("jaxvision.") and not name.startswith("doctest_")]
    assert sorted(MODELS) == sorted(builtin)


def _abstract(tree, spec):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a),
                                                       sharding=NamedSharding(MESH, spec)), tree)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_train_step_lowers_for_tpu_and_cuda_on_an_8_device_mesh(name, policy):
    kwargs, shape, loss, label_shape = MODELS[name]
    with policy_scope(policy):
        model = nnx.eval_shape(lambda: build_model(name, **kwargs))
    train_graphdef, eval_graphdef, params, rngs, state = split(model)
    metrics, optimizer = (get_metric("accuracy"),), get_optimizer("adam")
    steps = get_steps(train_graphdef, eval_graphdef, get_loss(loss), metrics, optimizer, stream_tags(model),
                      Placement(MESH))
    carry = Carry(params, state, jax.eval_shape(optimizer.init, params), init_sums(metrics),
                  jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32))
    args = (_abstract(carry, P()), _abstract(rngs, P()), _abstract(jax.random.key(0), P()),
            jax.ShapeDtypeStruct(shape, jnp.float32, sharding=NamedSharding(MESH, P("data"))),
            jax.ShapeDtypeStruct(label_shape, jnp.int32, sharding=NamedSharding(MESH, P("data"))))
    try:
        exported = jax.export.export(steps.train_batch, platforms=PLATFORMS)(*args)
        predict = jax.export.export(steps.predict_batch, platforms=PLATFORMS)(
            _abstract(params, P()), _abstract(state, P()), _abstract(rngs, P()), args[3])
    except Exception as error:  # name the model and the step, whatever lowering raised
        raise AssertionError(f"{name} ({policy}): the train/predict step does not lower for {PLATFORMS}: "
                             f"{type(error).__name__}: {error}") from error
    assert exported.platforms == PLATFORMS and exported.nr_devices == 8
    text = exported.mlir_module()
    # Lowered, not compiled: the 8-device mesh and the batch's split over "data" are in the module;
    # XLA adds the collectives (the gradients' all-reduce) when it compiles for the platform.
    assert 'sdy.mesh @mesh = <["data"=8]>' in text and 'sdy.sharding<@mesh, [{"data"}' in text
    assert predict.out_avals[0].shape[0] == shape[0]


def _replicated(tree):
    return _abstract(tree, P())


@pytest.mark.parametrize("name", ["mobilenet", "mini_xception"])
def test_grad_cam_and_filter_visualisation_lower_for_tpu_and_cuda(name):
    from jaxvision.interpret.filters import _ascend_many
    from jaxvision.interpret.gradcam import _score_gradient

    kwargs, shape, _, _ = MODELS[name]
    model = nnx.eval_shape(lambda: build_model(name, **kwargs))
    model.eval()
    graphdef, state = nnx.split(model)
    layer = {"mobilenet": "conv_pw_13_relu", "mini_xception": "block4_sepconv2"}[name]
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
