"""Build a network from its `ModelConfig`."""

from __future__ import annotations

from torch import nn

from relunet.config import MODEL_KINDS, ModelConfig
from relunet.nets.relation import RelationUNet
from relunet.nets.unet import SegmentationUNet


def build_model(cfg: ModelConfig) -> nn.Module:
    """Return a freshly initialised network for `cfg.kind` on backbone `cfg.backbone`."""
    if cfg.kind == "relation":
        return RelationUNet(cfg.spatial_dims, cfg.in_channels, cfg.num_classes, cfg.features, cfg.backbone)
    if cfg.kind in ("unet", "mcdropout"):
        dropout = cfg.head_dropout if cfg.kind == "mcdropout" else 0.0
        return SegmentationUNet(
            cfg.spatial_dims, cfg.in_channels, cfg.num_classes, cfg.features, dropout, cfg.backbone
        )
    raise ValueError(f"unknown model kind {cfg.kind!r}; choose one of {MODEL_KINDS}")
