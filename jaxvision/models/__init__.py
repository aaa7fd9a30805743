"""The book's models, built from [jaxvision.layers][jaxvision.layers]; importing this package registers
them with [build_model][jaxvision.models.registry.build_model]."""

from jaxvision.models import convnets, segmentation, xception  # noqa: F401  (register the book's models)
from jaxvision.models.base import Model, Sequential
from jaxvision.models.functional import Functional, GraphBuilder
from jaxvision.models.registry import build_model, rebuild_model, register
from jaxvision.models.rngs import model_rngs
from jaxvision.models.summary import summary

__all__ = ["Functional", "GraphBuilder", "Model", "Sequential", "build_model", "model_rngs", "rebuild_model", "register", "summary"]
