"""Inference: self-pair and anchor prediction, baselines, mask writers."""
