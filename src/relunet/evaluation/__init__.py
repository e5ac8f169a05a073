"""Evaluation: metrics over arrays, per-case tables and summaries. Never touches a model."""
