"""Every CAM, input attribution and faithfulness score lowers for TPU and GPU without the
hardware: each method's jitted program, on an abstract MobileNet (ReLU6s: guided backprop's
custom VJP is in the program), is exported with ``jax.export`` for ``("tpu", "cuda")``.
Nothing is compiled or run."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from jaxvision.interpret import attributions, cams, faithfulness
from jaxvision.models import build_model
from port_check import MODELS, PLATFORMS

N, K, LAYER = 2, 2, "conv_pw_13_relu"


@pytest.fixture(scope="module")
def mobilenet():
    kwargs, shape, _, _ = MODELS["mobilenet"]
    model = nnx.eval_shape(lambda: build_model("mobilenet", **kwargs))
    model.eval()
    graphdef, state = nnx.split(model)
    return graphdef, state, (N, *shape[1:])


def lowered(fn, *args):
    exported = jax.export.export(fn, platforms=PLATFORMS)(*args)
    assert exported.platforms == PLATFORMS
    return [a.shape for a in exported.out_avals]


def abstract(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(shape, dtype)


def test_every_cam_lowers(mobilenet):
    graphdef, state, shape = mobilenet
    images, classes = abstract(shape), abstract((N, K), jnp.int32)
    h, w = shape[1] // 32, shape[2] // 32
    for method in cams.GRADIENT_CAMS:
        assert lowered(cams._gradient_cam, graphdef, state, images, classes, LAYER, False, method) == [(N, K, h, w)]
    assert lowered(cams._eigen_cam, graphdef, state, images, LAYER) == [(N, h, w)]
    for program in (cams._score_cam, cams._ablation_cam):
        assert lowered(program, graphdef, state, images, classes, LAYER, False, 16) == [(N, K, h, w)]


def test_every_input_attribution_and_score_lowers(mobilenet):
    graphdef, state, shape = mobilenet
    images, classes = abstract(shape), abstract((N, K), jnp.int32)
    # gradients: gradient_times_input's program without its last product
    for method in ("gradient_times_input", "guided_backprop", "integrated_gradients"):
        assert lowered(attributions._attributions, graphdef, state, images, classes, images, False, method, 8,
                       "gausslegendre", 4) == [(N, K, *shape[1:])]
    assert lowered(attributions._smooth, graphdef, state, images, classes, images, jax.random.PRNGKey(0),
                   jnp.float32(0.15), False, "guided_backprop", 1, "gausslegendre", 4, 8, True) == [(N, K, *shape[1:])]
    assert lowered(attributions._completeness, graphdef, state, images, abstract((N, K, *shape[1:])), classes, images,
                   False) == [(N, K)]
    masks = abstract((9, *shape[1:3]))
    assert lowered(attributions._occlusion, graphdef, state, images, classes, images, masks, False, 4) == \
        [(N, K, *shape[1:])]
    one = abstract((N, 1), jnp.int32)
    maps = abstract((N, *shape[1:3]))
    assert lowered(faithfulness._curves, graphdef, state, images, maps, one, images, False, 8, 3) == [(9, 2, N)]
    assert lowered(faithfulness._road, graphdef, state, images, maps, one, abstract((3,)), jnp.float32(0.01),
                   jax.random.PRNGKey(0), False) == [(N, 3), (N, 3)]
