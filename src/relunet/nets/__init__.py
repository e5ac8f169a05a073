"""Networks: the U-Net backbone, the Relation U-Net and the baselines. No data, no training."""

from relunet.nets.build import build_model
from relunet.nets.relation import RelationUNet
from relunet.nets.unet import SegmentationUNet

__all__ = ["RelationUNet", "SegmentationUNet", "build_model"]
