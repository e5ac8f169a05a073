"""Networks: the backbone factory, the Relation U-Net and the baselines. No data, no training."""

from relunet.nets.backbone_factory import (
    Backbone,
    build_backbone,
    check_features,
    model_features,
    size_multiple,
)
from relunet.nets.build import build_model
from relunet.nets.relation import RelationUNet
from relunet.nets.unet import SegmentationUNet

__all__ = [
    "Backbone",
    "RelationUNet",
    "SegmentationUNet",
    "build_backbone",
    "build_model",
    "check_features",
    "model_features",
    "size_multiple",
]
