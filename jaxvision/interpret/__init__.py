"""What convnets learn (DLwP ch. 10): intermediate activations, filter patterns by gradient
ascent and Grad-CAM heatmaps, for any jaxvision model by layer name (through its taps)."""

from jaxvision.interpret.activations import activations, conv_and_pool_layers, spatial_layers
from jaxvision.interpret.filters import deprocess_image, normalize_gradient, visualize_filter_loop, visualize_filters
from jaxvision.interpret.gradcam import class_score_gradient, class_scores, default_layer, grad_cam
from jaxvision.interpret.plots import (activation_grid, overlay_heatmap, plot_activation_grid,
                                       save_activation_grids, save_matshow, save_titled_image,
                                       stitch_filters)

__all__ = [
    "activation_grid", "activations", "class_score_gradient", "class_scores", "conv_and_pool_layers", "spatial_layers",
    "default_layer", "deprocess_image", "grad_cam", "overlay_heatmap", "plot_activation_grid", "save_activation_grids",
    "normalize_gradient", "save_matshow", "save_titled_image", "stitch_filters", "visualize_filter_loop", "visualize_filters",
]
