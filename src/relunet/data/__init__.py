"""Data: readers, dataset layouts, preprocessing, slicing, splits, pairing, synthetic data."""
