"""Pretrained ImageNet backbones shaped like ``keras.applications``: one file per
architecture, Keras's layer names, Keras's weight files (see :mod:`jaxvision.weights`)."""

from jaxvision.applications.imagenet_utils import decode_predictions, preprocess_input
from jaxvision.applications.mobilenet import MobileNet, MobileNetV1, mobilenet

__all__ = ["MobileNet", "MobileNetV1", "decode_predictions", "mobilenet", "preprocess_input"]
