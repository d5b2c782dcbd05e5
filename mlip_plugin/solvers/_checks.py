"""Input checks shared by the solvers: every bad input raises :class:`InputError`.

Messages name the parameter, the value received, what is allowed and what to do.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = [
    "check_design",
    "check_gram",
    "check_prior",
    "check_positive_int",
    "check_nonneg_float",
    "check_positive_float",
    "check_choice",
    "check_fraction",
]


def _as_float_array(value, name: str, ndim: int) -> np.ndarray:
    if np.iscomplexobj(value):
        raise InputError(
            f"{name} is complex; the solvers take real arrays: pass its real part explicitly "
            "if the imaginary part is zero"
        )
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"{name} must be a numeric array, got {type(value).__name__}; pass a numpy array "
            "of floats"
        ) from err
    if arr.ndim != ndim:
        raise InputError(
            f"{name} must be a {ndim}-d array, got shape {arr.shape}; reshape it "
            f"(e.g. ravel a single target vector)"
        )
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise InputError(
            f"{name} contains {n_bad} NaN or infinite value(s); only finite values are "
            "allowed: remove or fix the rows/columns that produce them"
        )


def check_design(A, y, name_a: str = "A", name_y: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Design matrix ``A`` (n, p) and target ``y`` (n,) as finite float arrays (no copies)."""
    A = _as_float_array(A, name_a, 2)
    y = _as_float_array(y, name_y, 1)
    if A.shape[0] != y.shape[0]:
        raise InputError(
            f"{name_a} has {A.shape[0]} rows but {name_y} has {y.shape[0]} entries; they must "
            "match (one target per row)"
        )
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise InputError(f"{name_a} has shape {A.shape}; it needs at least one row and column")
    _check_finite(A, name_a)
    _check_finite(y, name_y)
    return A, y


def check_gram(G, b, yy, n_rows, prefix: str = "") -> tuple[np.ndarray, np.ndarray, float, int]:
    """Gram matrix ``G`` (p, p), ``b = Aᵀy`` (p,), ``yy = yᵀy`` and the number of rows.

    Symmetry is checked on a sample of rows (a full check would copy a large ``G``).
    """
    G = _as_float_array(G, prefix + "G", 2)
    b = _as_float_array(b, prefix + "b", 1)
    p = G.shape[0]
    if G.shape != (p, p) or p == 0:
        raise InputError(f"{prefix}G must be square (p, p) with p >= 1, got shape {G.shape}")
    if b.shape != (p,):
        raise InputError(
            f"{prefix}b must have shape ({p},) to match {prefix}G, got {b.shape}; pass Aᵀy"
        )
    _check_finite(G, prefix + "G")
    _check_finite(b, prefix + "b")
    rows = np.unique(np.linspace(0, p - 1, min(p, 32)).astype(int))
    scale = max(float(np.abs(np.diag(G)).max()), np.finfo(float).tiny)
    if np.abs(G[rows, :] - G[:, rows].T).max() > 1e-8 * scale:
        raise InputError(f"{prefix}G is not symmetric; pass the Gram matrix AᵀA")
    if np.diag(G).min() < 0:
        raise InputError(
            f"{prefix}G has a negative diagonal entry ({np.diag(G).min():.3g}); a Gram matrix "
            "AᵀA has a non-negative diagonal"
        )
    yy = check_nonneg_float(yy, prefix + "yy")
    n_rows = check_positive_int(n_rows, prefix + "n_rows")
    return G, b, yy, n_rows


def check_prior(prior, p: int) -> np.ndarray | None:
    """The smoothness prior γ: ``None`` or a positive finite vector of length ``p``."""
    if prior is None:
        return None
    gamma = _as_float_array(prior, "prior", 1)
    if gamma.shape != (p,):
        raise InputError(
            f"prior must have one entry per column, shape ({p},), got {gamma.shape}"
        )
    bad = ~np.isfinite(gamma)
    if bad.any():
        raise InputError(
            f"prior must be finite and positive; it has {int(bad.sum())} NaN or infinite "
            f"entries (first at index {int(np.flatnonzero(bad)[0])}): use e.g. 1 + "
            "smoothness penalty of each basis function"
        )
    if gamma.min() <= 0:
        raise InputError(
            f"prior must be finite and positive (smallest entry {gamma.min():.3g} at index "
            f"{int(np.argmin(gamma))}); use e.g. 1 + smoothness penalty of each basis function"
        )
    return gamma


def check_positive_int(value, name: str, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name}={value!r} must be a positive integer")
    if maximum is not None and value > maximum:
        raise InputError(f"{name}={value!r} exceeds the allowed maximum {maximum}; lower it")
    return int(value)


def check_nonneg_float(value, name: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name}={value!r} must be a number >= 0") from err
    if not np.isfinite(out) or out < 0:
        raise InputError(f"{name}={value!r} must be a finite number >= 0")
    return out


def check_positive_float(value, name: str) -> float:
    """A finite number > 0 (a precision, a scale)."""
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name}={value!r} must be a number > 0") from err
    if not np.isfinite(out) or out <= 0:
        raise InputError(f"{name}={value!r} must be a finite number > 0")
    return out


def check_fraction(value, name: str) -> float:
    """A number in [0, 1)."""
    out = check_nonneg_float(value, name)
    if not out < 1:
        raise InputError(f"{name}={value!r} must be below 1 (a relative tolerance)")
    return out


def check_choice(value, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}")
    return value
