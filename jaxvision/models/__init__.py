"""The book's models, built from :mod:`jaxvision.layers`."""

from jaxvision.models.base import Model, Sequential
from jaxvision.models.registry import build_model, rebuild_model, register
from jaxvision.models.summary import summary

__all__ = ["Model", "Sequential", "build_model", "rebuild_model", "register", "summary"]
