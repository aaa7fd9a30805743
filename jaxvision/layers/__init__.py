"""Keras-exact vision layers written on ``jax.lax``, one concept per file.

Forking a layer needs only the names exported here: argument checks and normalisation
(``check_input``, ``check_padding``, ``check_fits``, ``pair``, ``layer_label``), the
depthwise and pointwise primitives (``configure_depthwise``, ``depthwise_step``,
``depthwise_conv``, ``pointwise_conv``) and the dtype policy (``layer_dtypes``,
``autocast``, ``get_activation``); the own-model guide forks ``SeparableConv2D`` with them.
"""

from jaxvision.layers._validate import check_fits, check_input, check_padding, layer_label, pair
from jaxvision.layers.augmentation import AugmentBatch, RandomFlip, RandomRotation, RandomZoom, augment
from jaxvision.layers.base import Layer, count_params, set_trainable, sublayers, trainable_filter
from jaxvision.layers.conv import Conv2D
from jaxvision.layers.conv_transpose import Conv2DTranspose
from jaxvision.layers.core import Activation, Dense, Dropout, Flatten, Rescaling, get_activation
from jaxvision.layers.merging import Add, Concatenate, Multiply, ScaledAdd
from jaxvision.layers.feature_normalization import Normalization
from jaxvision.layers.layer_normalization import LayerNormalization
from jaxvision.layers.normalization import BatchNormalization, unfreeze_except_batchnorm
from jaxvision.layers.precision import (Policy, autocast, get_policy, global_policy, layer_dtypes, policy_scope,
                                       set_global_policy, set_policy)
from jaxvision.layers.pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from jaxvision.layers.regularizers import L1, L2, L1L2, add_loss, collect_losses, get_regularizer, weight_penalty
from jaxvision.layers.reshaping import Cropping2D, Reshape, ZeroPadding2D
from jaxvision.layers.residual import ResidualBlock
from jaxvision.layers.separable import (DepthwiseConv2D, SeparableConv2D, configure_depthwise, depthwise_conv,
                                       depthwise_step, pointwise_conv)
from jaxvision.layers.upsampling import UpSampling2D
from jaxvision.layers.separable import DepthwiseConv2D, SeparableConv2D
from jaxvision.layers.stochastic_depth import LayerScale, StochasticDepth

__all__ = ["Activation", "Conv2D", "Dense", "Dropout", "Flatten", "Rescaling", "get_activation"]
__all__ += ["AveragePooling2D", "BatchNormalization", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
            "MaxPooling2D", "ResidualBlock"]
__all__ += ["AugmentBatch", "RandomFlip", "RandomRotation", "RandomZoom", "augment"]
__all__ += ["Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"]
__all__ += ["Policy", "get_policy", "global_policy", "policy_scope", "set_global_policy", "set_policy"]
__all__ += ["Layer", "count_params", "set_trainable", "sublayers", "trainable_filter", "unfreeze_except_batchnorm"]
__all__ += ["Reshape", "UpSampling2D", "ZeroPadding2D"]
__all__ += ["Add", "Concatenate", "Multiply", "ScaledAdd"]
__all__ += ["L1", "L1L2", "L2", "add_loss", "collect_losses", "get_regularizer", "weight_penalty"]
__all__ += ["autocast", "check_fits", "check_input", "check_padding", "configure_depthwise", "depthwise_conv",
            "depthwise_step", "layer_dtypes", "layer_label", "pair", "pointwise_conv"]
__all__ += ["Cropping2D", "Reshape", "ZeroPadding2D"]
__all__ += ["L1", "L1L2", "L2", "add_loss", "collect_losses", "get_regularizer", "weight_penalty"]
__all__ += ["LayerNormalization", "LayerScale", "Normalization", "StochasticDepth"]
