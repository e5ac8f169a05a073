"""Relation U-Net: segmentation that scores its own confidence, with no ground truth."""

__version__ = "0.1.0"
