"""Training: losses, the loop, checkpoints, and the `train` workflow."""
