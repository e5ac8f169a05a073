"""Analyses of trained runs and cross-validations: the numbers behind the pages of docs/."""
