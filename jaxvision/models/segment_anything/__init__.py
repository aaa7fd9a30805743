"""Segment Anything (Kirillov et al., 2023) in Flax NNX, exact to Meta's ``segment-anything``.

Build a model with ``Sam(CONFIGS["vit_b"], rngs=...)`` or load a released checkpoint with
``load_sam``; segment with ``SamPredictor``; draw with ``.plots``.
"""

from jaxvision.models.segment_anything.checkpoint import CheckpointInfo, load_sam, sam_from_state_dict
from jaxvision.models.segment_anything.predictor import SamPredictor, predict_masks, resize_and_pad
from jaxvision.models.segment_anything.sam import CONFIGS, Sam, SamConfig, count_params, postprocess_masks

__all__ = ["CONFIGS", "CheckpointInfo", "Sam", "SamConfig", "SamPredictor", "count_params", "load_sam",
           "postprocess_masks", "predict_masks", "resize_and_pad", "sam_from_state_dict"]
