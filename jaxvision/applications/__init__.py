"""Pretrained ImageNet backbones shaped like ``keras.applications``: one file per
architecture, Keras's layer names, Keras's weight files (see [jaxvision.weights][jaxvision.weights])."""

from jaxvision.applications.imagenet_utils import decode_predictions, imagenet_class_names, preprocess_input
from jaxvision.applications.mobilenet import MobileNet, MobileNetV1, mobilenet
from jaxvision.applications.mobilenet_unet import MobileNetUNet, load_encoder_weights, mobilenet_unet
from jaxvision.applications.xception import Xception, XceptionNet, xception

__all__ = ["MobileNet", "MobileNetUNet", "MobileNetV1", "Xception", "XceptionNet", "decode_predictions", "imagenet_class_names", "load_encoder_weights",
           "mobilenet", "mobilenet_unet", "preprocess_input", "xception"]
