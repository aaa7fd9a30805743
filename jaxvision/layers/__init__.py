"""Keras-exact vision layers written on ``jax.lax``, one concept per file."""

from jaxvision.layers.augmentation import AugmentBatch, RandomFlip, RandomRotation, RandomZoom, augment
from jaxvision.layers.base import Layer, count_params, set_trainable, sublayers, trainable_filter
from jaxvision.layers.conv import Conv2D
from jaxvision.layers.conv_transpose import Conv2DTranspose
from jaxvision.layers.core import Activation, Dense, Dropout, Flatten, Rescaling, get_activation
from jaxvision.layers.feature_normalization import Normalization
from jaxvision.layers.layer_normalization import LayerNormalization
from jaxvision.layers.normalization import BatchNormalization, unfreeze_except_batchnorm
from jaxvision.layers.precision import Policy, get_policy, global_policy, policy_scope, set_global_policy, set_policy
from jaxvision.layers.pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from jaxvision.layers.regularizers import L1, L2, L1L2, add_loss, collect_losses, get_regularizer, weight_penalty
from jaxvision.layers.reshaping import Cropping2D, Reshape, ZeroPadding2D
from jaxvision.layers.residual import ResidualBlock
from jaxvision.layers.separable import DepthwiseConv2D, SeparableConv2D
from jaxvision.layers.stochastic_depth import LayerScale, StochasticDepth

__all__ = ["Activation", "Conv2D", "Dense", "Dropout", "Flatten", "Rescaling", "get_activation"]
__all__ += ["AveragePooling2D", "BatchNormalization", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
            "MaxPooling2D", "ResidualBlock"]
__all__ += ["AugmentBatch", "RandomFlip", "RandomRotation", "RandomZoom", "augment"]
__all__ += ["Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"]
__all__ += ["Policy", "get_policy", "global_policy", "policy_scope", "set_global_policy", "set_policy"]
__all__ += ["Layer", "count_params", "set_trainable", "sublayers", "trainable_filter", "unfreeze_except_batchnorm"]
__all__ += ["Cropping2D", "Reshape", "ZeroPadding2D"]
__all__ += ["L1", "L1L2", "L2", "add_loss", "collect_losses", "get_regularizer", "weight_penalty"]
__all__ += ["LayerNormalization", "LayerScale", "Normalization", "StochasticDepth"]
