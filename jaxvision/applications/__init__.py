"""Pretrained ImageNet backbones shaped like ``keras.applications``: one file per
architecture, Keras's layer names, Keras's weight files (see [jaxvision.weights][jaxvision.weights]).

Each family's module has its own ``preprocess_input`` (Keras's mode for it: ``"caffe"`` for
VGG and ResNet, ``"torch"`` for DenseNet, ``"tf"`` for the others) and ``decode_predictions``,
as ``keras.applications.resnet.preprocess_input``; the package-level ``preprocess_input`` is
mode ``"tf"`` (MobileNet, Xception).
"""

from jaxvision.applications import densenet, inception_resnet_v2, inception_v3, resnet, resnet_v2, vgg
from jaxvision.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from jaxvision.applications.imagenet_utils import decode_predictions, imagenet_class_names, preprocess_input
from jaxvision.applications.inception_resnet_v2 import InceptionResNetV2
from jaxvision.applications.inception_v3 import InceptionV3
from jaxvision.applications.mobilenet import MobileNet, MobileNetV1, mobilenet
from jaxvision.applications.mobilenet_unet import MobileNetUNet, load_encoder_weights, mobilenet_unet
from jaxvision.applications.resnet import ResNet50, ResNet101, ResNet152
from jaxvision.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from jaxvision.applications.vgg import VGG16, VGG19
from jaxvision.applications.xception import Xception, XceptionNet, xception
from jaxvision.applications.mobilenet_v2 import MobileNetV2, mobilenet_v2
from jaxvision.applications.mobilenet_v3 import (MobileNetV3Large, MobileNetV3Small, mobilenet_v3_large,
                                                 mobilenet_v3_small)
from jaxvision.applications.efficientnet import (EfficientNetB0, EfficientNetB1, EfficientNetB2, EfficientNetB3,
                                                 EfficientNetB4, EfficientNetB5, EfficientNetB6, EfficientNetB7)
from jaxvision.applications.efficientnet_v2 import (EfficientNetV2B0, EfficientNetV2B1, EfficientNetV2B2,
                                                    EfficientNetV2B3, EfficientNetV2L, EfficientNetV2M,
                                                    EfficientNetV2S)
from jaxvision.applications.convnext import ConvNeXtBase, ConvNeXtLarge, ConvNeXtSmall, ConvNeXtTiny, ConvNeXtXLarge
from jaxvision.applications.nasnet import NASNetLarge, NASNetMobile

__all__ = ["MobileNet", "MobileNetV1", "Xception", "XceptionNet", "decode_predictions", "imagenet_class_names", "mobilenet",
           "preprocess_input", "xception"]
__all__ += ["DenseNet121", "DenseNet169", "DenseNet201", "InceptionResNetV2", "InceptionV3", "ResNet50", "ResNet50V2",
            "ResNet101", "ResNet101V2", "ResNet152", "ResNet152V2", "VGG16", "VGG19"]
__all__ += ["densenet", "inception_resnet_v2", "inception_v3", "resnet", "resnet_v2", "vgg"]
__all__ += ["MobileNetUNet", "load_encoder_weights", "mobilenet_unet"]
# The depthwise and modern families (issue 30): Keras's constructors; the lower-case builders
# (mobilenet_v2, efficientnet_b0, convnext_tiny…) are registered for build_model.
MODERN = ["MobileNetV2", "MobileNetV3Small", "MobileNetV3Large"] + [f"EfficientNetB{i}" for i in range(8)]
MODERN += [f"EfficientNetV2{v}" for v in ("B0", "B1", "B2", "B3", "S", "M", "L")]
MODERN += ["ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge"]
MODERN += ["NASNetMobile", "NASNetLarge"]
__all__ += MODERN + ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]
