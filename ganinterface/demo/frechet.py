"""Fréchet distance between two sets of feature vectors (the statistic behind FID).

d² = |μa − μb|² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½)

The matrix square root is taken through symmetric eigendecompositions, which stay real and stable
for the positive semi-definite covariances of classifier features (no SciPy needed).
"""

from __future__ import annotations

import numpy as np


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need a (N >= 2, D) feature array, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    mean_a, cov_a = feature_statistics(features_a)
    mean_b, cov_b = feature_statistics(features_b)
    root_a = _sqrt_psd(cov_a)
    cross = _sqrt_psd(root_a @ cov_b @ root_a)
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(cross)
    return float(max(distance, 0.0))
