import numpy as np
import pytest

from ganinterface.demo.frechet import frechet_distance


def test_identical_sets_are_at_distance_zero():
    features = np.random.default_rng(1).normal(size=(500, 6))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_matches_closed_form_for_diagonal_gaussians():
    # For diagonal covariances the distance is sum((ma-mb)^2) + sum((sa-sb)^2) per dimension.
    rng = np.random.default_rng(2)
    n = 200_000
    mean_a, std_a = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 2.0])
    mean_b, std_b = np.array([0.5, 1.0, 0.0]), np.array([2.0, 0.5, 1.0])
    a = rng.normal(size=(n, 3)) * std_a + mean_a
    b = rng.normal(size=(n, 3)) * std_b + mean_b
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((std_a - std_b) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_matches_closed_form_for_commuting_full_covariances():
    # Covariances sharing eigenvectors: tr term is sum (sqrt(la) - sqrt(lb))^2 over eigenvalues.
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    la, lb = np.array([4.0, 1.0, 0.25, 2.0]), np.array([1.0, 1.0, 1.0, 0.5])
    cov_a, cov_b = (q * la) @ q.T, (q * lb) @ q.T
    a = rng.multivariate_normal(np.zeros(4), cov_a, size=200_000)
    b = rng.multivariate_normal(np.ones(4), cov_b, size=200_000)
    expected = 4.0 + np.sum((np.sqrt(la) - np.sqrt(lb)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.03)


def test_rejects_too_few_samples():
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
