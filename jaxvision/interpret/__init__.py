"""What convnets learn (DLwP ch. 10): intermediate activations, filter patterns by gradient
ascent and Grad-CAM heatmaps, for any jaxvision model by layer name (through its taps); beyond
the book, the CAM family, input attributions and faithfulness scores (issue 31)."""

from jaxvision.interpret.activations import activations, conv_and_pool_layers, spatial_layers
from jaxvision.interpret.attributions import (completeness_error, gradient_times_input, gradients, guided_backprop,
                                              integrated_gradients, occlusion, smooth_grad)
from jaxvision.interpret.cams import (ablation_cam, eigen_cam, grad_cam_plus_plus, hires_cam, layer_cam, score_cam,
                                      xgrad_cam)
from jaxvision.interpret.faithfulness import deletion_insertion, randomization_sanity_check, road
from jaxvision.interpret.filters import deprocess_image, normalize_gradient, visualize_filter_loop, visualize_filters
from jaxvision.interpret.gradcam import class_score_gradient, class_scores, default_layer, grad_cam
from jaxvision.interpret.plots import (activation_grid, overlay_heatmap, plot_activation_grid,
                                       save_activation_grids, save_matshow, save_titled_image,
                                       stitch_filters)

__all__ = [
    "ablation_cam", "completeness_error", "deletion_insertion", "eigen_cam", "grad_cam_plus_plus", "gradient_times_input",
    "gradients", "guided_backprop", "hires_cam", "integrated_gradients", "layer_cam", "occlusion",
    "randomization_sanity_check", "road", "score_cam", "smooth_grad", "xgrad_cam",
    "activation_grid", "activations", "class_score_gradient", "class_scores", "conv_and_pool_layers", "spatial_layers",
    "default_layer", "deprocess_image", "grad_cam", "overlay_heatmap", "plot_activation_grid", "save_activation_grids",
    "normalize_gradient", "save_matshow", "save_titled_image", "stitch_filters", "visualize_filter_loop", "visualize_filters",
]
