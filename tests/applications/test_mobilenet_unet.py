"""The MobileNet U-Net: its encoder is the real ImageNet MobileNet (same activations as
keras.applications' model on the same pixels), skips come from the encoder's named taps,
freezing the encoder leaves the decoder trainable, sizes it cannot take are named, and it
exports and rebuilds from a checkpoint."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.applications import MobileNet, load_encoder_weights, mobilenet_unet
from jaxvision.export import export_model, load_exported
from jaxvision.layers import count_params, unfreeze_except_batchnorm
from jaxvision.models import build_model
from jaxvision.train import load_model, predict, save_checkpoint


@pytest.fixture(scope="module")
def small_unet():
    """α 0.25 (Keras's HDF5 ImageNet file) with a narrow decoder: the cheapest real encoder."""
    return load_encoder_weights(build_model("mobilenet_unet", alpha=0.25, decoder_filters=[32, 16, 16, 8], seed=1))


def test_the_encoder_is_the_imagenet_mobilenet_and_feeds_the_decoder(small_unet):
    reference = MobileNet(alpha=0.25, include_top=False, weights="imagenet")
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    _, taps = small_unet.intermediates(jnp.asarray(pixels), ["preprocessing", "encoder/conv_pw_3_relu",
                                                             "encoder/conv_pw_13_relu", "up3_concat"])
    np.testing.assert_allclose(taps["preprocessing"], pixels / 127.5 - 1, rtol=0, atol=2e-7)  # preprocess_input
    _, expected = reference.intermediates(taps["preprocessing"], ["conv_pw_3_relu", "conv_pw_13_relu"])
    np.testing.assert_allclose(taps["encoder/conv_pw_13_relu"], expected["conv_pw_13_relu"], rtol=1e-6, atol=1e-6)
    assert float(expected["conv_pw_13_relu"].max()) > 1  # real features, not zeros
    # The stride-4 skip is concatenated after the decoder's 16 channels.
    np.testing.assert_allclose(taps["up3_concat"][..., 16:], expected["conv_pw_3_relu"], rtol=1e-6, atol=1e-6)


def test_frozen_encoder_then_fine_tuning_without_its_batchnorm(small_unet):
    trainable, encoder_trainable = count_params(small_unet)[0], count_params(small_unet.encoder)[0]
    small_unet.encoder.trainable = False
    try:
        assert count_params(small_unet.encoder)[0] == 0
        assert count_params(small_unet)[0] == trainable - encoder_trainable > 0  # the decoder still trains
        unfreeze_except_batchnorm(small_unet.encoder)
        assert small_unet.encoder.conv_pw_13.trainable and not small_unet.encoder.conv_pw_13_bn.trainable
        assert 0 < count_params(small_unet.encoder)[0] < encoder_trainable
    finally:
        small_unet.trainable = True


@pytest.mark.parametrize("shape, match", [((1, 48, 64, 3), "multiples of 32"), ((1, 64, 64), "multiples of 32")])
def test_sizes_it_cannot_take_are_named(small_unet, shape, match):
    with pytest.raises(ValueError, match=f"MobileNetUNet: input height and width must be {match}"):
        small_unet(jnp.zeros(shape))


def test_decoder_filters_need_one_value_per_skip():
    with pytest.raises(ValueError, match=r"MobileNetUNet: decoder_filters needs 4 values"):
        mobilenet_unet(alpha=0.25, decoder_filters=[8, 8])


def test_rebuilds_from_a_checkpoint_and_exports(small_unet, tmp_path):
    x = np.random.default_rng(1).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    expected = predict(small_unet, x)
    save_checkpoint(tmp_path / "checkpoint", small_unet)
    np.testing.assert_allclose(predict(load_model(tmp_path / "checkpoint"), x), expected, rtol=1e-6, atol=1e-6)
    out = export_model(small_unet, tmp_path / "exported", input_shape=(64, 64, 3), platforms=("cpu",))  # tpu/cuda:
    # the port check lowers it
    run = load_exported(out)
    np.testing.assert_allclose(np.asarray(run(x)), expected, rtol=1e-5, atol=1e-6)
