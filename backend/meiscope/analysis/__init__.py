"""Analyses of units and images: Gabor fits, Gaussian baselines, the unit census."""
