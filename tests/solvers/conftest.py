"""Design-matrix factories for the solver tests (fixed seeds, small sizes)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def make_design(n: int, p: int, seed: int = 0, correlation: float = 0.5,
                spread: float = 2.0) -> np.ndarray:
    """Random (n, p) design with correlated neighbouring columns and norms over 10^±spread."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, p + 1))
    A = Z[:, 1:] + correlation * Z[:, :-1]
    return A * 10.0 ** rng.uniform(-spread, spread, p)


def planted(A: np.ndarray, k: int, seed: int = 1, noise: float = 0.0):
    """A sparse coefficient vector on k random columns (unit-norm scale) and y = A c + noise."""
    rng = np.random.default_rng(seed)
    p = A.shape[1]
    support = np.sort(rng.choice(p, k, replace=False))
    c = np.zeros(p)
    c[support] = rng.choice([-1.0, 1.0], k) * rng.uniform(1.0, 3.0, k)
    c[support] /= np.linalg.norm(A[:, support], axis=0)
    y = A @ c
    return c, y + noise * np.std(y) * rng.standard_normal(len(y))


def gram(A: np.ndarray, y: np.ndarray):
    return A.T @ A, A.T @ y, float(y @ y), A.shape[0]


@pytest.fixture(scope="session")
def fx() -> SimpleNamespace:
    """The factories: ``fx.design(n, p, seed)``, ``fx.planted(A, k)``, ``fx.gram(A, y)``."""
    return SimpleNamespace(design=make_design, planted=planted, gram=gram)


@pytest.fixture(scope="session")
def diabetes_poly():
    """A real, ill-conditioned design: the diabetes data (442 × 10) with cubic polynomial
    features (285 columns, no constant), and its target."""
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import PolynomialFeatures

    X, y = load_diabetes(return_X_y=True)
    A = PolynomialFeatures(degree=3, include_bias=False).fit_transform(X)
    return A, y - y.mean()
