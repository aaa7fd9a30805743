"""Numbers you can trust: find the first layer where two implementations (jaxvision and Keras,
float32 and bfloat16, one device and a mesh) disagree. ``python -m jaxvision.debug compare``
is the command-line form."""

from jaxvision.debug.compare import (TOLERANCES, Report, Row, compare, drift, jaxvision_intermediates,
                                     keras_intermediates)

__all__ = ["TOLERANCES", "Report", "Row", "compare", "drift", "jaxvision_intermediates", "keras_intermediates"]
