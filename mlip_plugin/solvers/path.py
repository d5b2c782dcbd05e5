"""Solution paths of the active-set solvers and model selection along a path.

A :class:`SolutionPath` holds a sequence of sparse models of growing size (OMP: one per
added basis function; ASP: one per breakpoint of the ℓ1 homotopy).  Coefficients are stored
once, in compressed-column form (point ``i`` owns ``indices/values[indptr[i]:indptr[i+1]]``,
the support in the order the solver activated it), always in the caller's scale.

Selection rules (``path.select(rule)``): :func:`final`, :func:`by_size`,
:func:`by_validation` (validation rows) and :func:`by_validation_gram` (validation Gram
matrix, for data that never existed as one design matrix).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ._checks import check_choice, check_design, check_gram, check_positive_int

__all__ = [
    "SolverInfo",
    "SolutionPath",
    "Selection",
    "final",
    "by_size",
    "by_validation",
    "by_validation_gram",
    "sse_from_gram",
]


@dataclass(frozen=True)
class SolverInfo:
    """What a solver did.

    Attributes
    ----------
    solver : str
        Name of the algorithm.
    n_iter : int
        Iterations (OMP: columns tried; homotopy: breakpoints; dense: evidence iterations).
    stop_reason : str
        Why it stopped (``"max_active"``, ``"tol"``, ``"lambda_min"``, ``"dependent"``, ...).
    warnings : tuple of str
        Every warning it emitted, in order.
    n_added, n_removed, n_skipped : int
        Columns added, removed (sign changes) and skipped as numerically dependent.
    settings : tuple of (str, value)
        The parameters it ran with.
    """

    solver: str
    n_iter: int
    stop_reason: str
    warnings: tuple[str, ...] = ()
    n_added: int = 0
    n_removed: int = 0
    n_skipped: int = 0
    settings: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class SolutionPath:
    """Sparse models along a solution path.

    Attributes
    ----------
    n_features : int
        Number of columns p of the design matrix.
    indptr : ndarray of int (m + 1,)
        Point ``i`` owns entries ``indptr[i]:indptr[i + 1]`` of ``indices`` and ``values``.
    indices : ndarray of int (nnz,)
        Active basis functions of each point, in activation order.
    values : ndarray (nnz,)
        Their coefficients, in the caller's scale (prior and normalisation undone).
    rss : ndarray (m,)
        Training residual sum of squares ``||A c - y||²`` of each point.
    lambdas : ndarray (m,) or None
        ℓ1 penalty of each point in the scaled problem (homotopy only).
    info : SolverInfo
        What the solver did.
    """

    n_features: int
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    rss: np.ndarray
    lambdas: np.ndarray | None
    info: SolverInfo

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def sizes(self) -> np.ndarray:
        """Number of active basis functions at each point, (m,)."""
        return np.diff(self.indptr)

    def _check_index(self, i: int) -> int:
        m = len(self)
        if not isinstance(i, int | np.integer) or not -m <= i < m:
            raise InputError(f"path point {i!r} out of range; the path has {m} points")
        return int(i) % m

    def support(self, i: int) -> np.ndarray:
        """Active basis functions of point ``i`` in activation order, (k,)."""
        i = self._check_index(i)
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def coef_values(self, i: int) -> np.ndarray:
        """Coefficients of ``support(i)``, (k,)."""
        i = self._check_index(i)
        return self.values[self.indptr[i] : self.indptr[i + 1]]

    def coef(self, i: int = -1) -> np.ndarray:
        """Dense coefficient vector of point ``i``, (p,)."""
        out = np.zeros(self.n_features)
        out[self.support(i)] = self.coef_values(i)
        return out

    def to_sparse(self) -> sp.csc_array:
        """All coefficients as a sparse (p, m) array, one column per point."""
        return sp.csc_array(
            (self.values, self.indices, self.indptr), shape=(self.n_features, len(self))
        )

    def select(self, rule: Rule | str = "final") -> Selection:
        """Pick one point of the path by ``rule`` (``final()``, ``by_size(n)``, ...)."""
        if isinstance(rule, str):
            if rule != "final":
                raise InputError(f"rule={rule!r}: pass 'final' or a rule object "
                                 "(final(), by_size(n), by_validation(...))")
            rule = final()
        if not isinstance(rule, Rule):
            raise InputError(f"rule={rule!r} is not a selection rule; use final(), by_size(n), "
                             "by_validation(A_val, y_val) or by_validation_gram(...)")
        if len(self) == 0:
            raise InputError("the path is empty; nothing to select")
        index, scores = rule.choose(self)
        return Selection(index=index, support=self.support(index).copy(),
                         values=self.coef_values(index).copy(), n_features=self.n_features,
                         rule=rule.name, scores=scores)


@dataclass(frozen=True)
class Selection:
    """One model picked from a path: its support and coefficients (caller's scale).

    ``scores`` holds the validation error of every path point when the rule computed it.
    """

    index: int
    support: np.ndarray
    values: np.ndarray
    n_features: int
    rule: str
    scores: np.ndarray | None = None

    @property
    def coef(self) -> np.ndarray:
        out = np.zeros(self.n_features)
        out[self.support] = self.values
        return out


@dataclass(frozen=True)
class Rule:
    """Base class of the selection rules."""

    name: str = field(default="final", init=False)

    def choose(self, path: SolutionPath) -> tuple[int, np.ndarray | None]:
        return len(path) - 1, None


@dataclass(frozen=True)
class _BySize(Rule):
    n: int = 1
    name: str = field(default="by_size", init=False)

    def choose(self, path):
        sizes = path.sizes
        over = np.flatnonzero(sizes > self.n)  # paths start with 0 (ASP) or 1 (OMP) functions
        if len(over) and over[0] == 0:  # e.g. a path of chosen model sizes
            raise InputError(f"by_size({self.n}): the path has no point with at most "
                             f"{self.n} functions (its first has {int(sizes[0])}); ask for "
                             f"n >= {int(sizes[0])}")
        return int((over[0] if len(over) else len(path)) - 1), None


@dataclass(frozen=True)
class _ByValidation(Rule):
    A_val: np.ndarray = None
    y_val: np.ndarray = None
    metric: str = "rmse"
    name: str = field(default="by_validation", init=False)

    def choose(self, path):
        if self.A_val.shape[1] != path.n_features:
            raise InputError(f"A_val has {self.A_val.shape[1]} columns, the path "
                             f"{path.n_features}; use the same basis")
        C = path.to_sparse()
        errors = np.empty(len(path))
        for start in range(0, len(path), 64):  # predictions of 64 points at a time
            pred = (C[:, start : start + 64].T @ self.A_val.T).T
            res = pred - self.y_val[:, None]
            errors[start : start + 64] = _metric(res, self.metric)
        return int(np.argmin(errors)), errors


@dataclass(frozen=True)
class _ByValidationGram(Rule):
    G_val: np.ndarray = None
    b_val: np.ndarray = None
    yy_val: float = 0.0
    n_val: int = 1
    metric: str = "rmse"
    name: str = field(default="by_validation_gram", init=False)

    def choose(self, path):
        if self.G_val.shape[0] != path.n_features:
            raise InputError(f"G_val is {self.G_val.shape[0]}-square, the path has "
                             f"{path.n_features} features; use the same basis")
        sse = _path_sse_from_gram(self.G_val, self.b_val, self.yy_val, path.to_sparse())
        errors = np.sqrt(sse / self.n_val) if self.metric == "rmse" else sse
        return int(np.argmin(errors)), errors


def _metric(res: np.ndarray, metric: str) -> np.ndarray:
    if metric == "rmse":
        return np.sqrt(np.mean(res**2, axis=0))
    if metric == "mae":
        return np.mean(np.abs(res), axis=0)
    return np.sum(res**2, axis=0)


def sse_from_gram(G, b, yy, support, values) -> float:
    """``||A c - y||²`` from ``G = AᵀA``, ``b = Aᵀy``, ``yy = yᵀy`` for a sparse ``c``."""
    if len(support) == 0:
        return float(yy)
    g = G[np.ix_(support, support)]
    return max(float(yy - 2.0 * b[support] @ values + values @ g @ values), 0.0)


def _path_sse_from_gram(G, b, yy, C: sp.csc_array, chunk: int = 32) -> np.ndarray:
    """``||A c_i - y||²`` of every column c_i of C (p, m) from the Gram form.

    Neighbouring path points share almost all of their support, so ``G`` is gathered once
    per ``chunk`` points on the union U of their supports and ``c_Uᵀ G_UU c_U`` is one gemm.
    """
    out = np.full(C.shape[1], float(yy))
    for start in range(0, C.shape[1], chunk):
        block = C[:, start : start + chunk]
        U = np.unique(block.indices)
        if len(U) == 0:
            continue
        Cu = block[U].toarray()  # (|U|, points)
        quad = np.einsum("ij,ij->j", Cu, G[np.ix_(U, U)] @ Cu)
        out[start : start + chunk] += quad - 2.0 * (b[U] @ Cu)
    return np.maximum(out, 0.0)


def final() -> Rule:
    """The last point of the path (largest model, smallest λ)."""
    return Rule()


def by_size(n: int) -> Rule:
    """The last point with at most ``n`` active functions before the path first exceeds n.

    Selecting it raises :class:`InputError` when the first point already has more than n.
    """
    return _BySize(n=check_positive_int(n, "n"))


def by_validation(A_val, y_val, metric: str = "rmse") -> Rule:
    """The point with the smallest error on validation rows ``A_val`` (n_v, p), ``y_val``.

    ``metric`` is ``"rmse"``, ``"mae"`` or ``"sse"``; rows carry the same weights as training.
    """
    A_val, y_val = check_design(A_val, y_val, "A_val", "y_val")
    metric = check_choice(metric, "metric", ("rmse", "mae", "sse"))
    return _ByValidation(A_val=A_val, y_val=y_val, metric=metric)


def by_validation_gram(G_val, b_val, yy_val, n_val, metric: str = "rmse") -> Rule:
    """As :func:`by_validation` from ``G_val = A_valᵀA_val``, ``b_val``, ``yy_val``, ``n_val``.

    Only ``"rmse"`` and ``"sse"`` are available (the MAE needs the rows themselves).
    """
    G_val, b_val, yy_val, n_val = check_gram(G_val, b_val, yy_val, n_val, prefix="validation ")
    metric = check_choice(metric, "metric", ("rmse", "sse"))
    return _ByValidationGram(G_val=G_val, b_val=b_val, yy_val=yy_val, n_val=n_val,
                             metric=metric)


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


class PathRecorder:
    """Collects path points of a solver and builds the :class:`SolutionPath` at the end.

    ``unscale(x_hat, support)`` maps scaled coefficients to the caller's scale.
    """

    def __init__(self, n_features: int, unscale):
        self.n_features = n_features
        self._unscale = unscale
        self._indices: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._rss: list[float] = []
        self._lambdas: list[float] = []

    def __len__(self) -> int:
        return len(self._rss)

    def add(self, support, x_hat, rss: float, lam: float | None = None) -> None:
        support = np.array(support, dtype=np.intp)
        self._indices.append(support)
        self._values.append(self._unscale(np.asarray(x_hat, dtype=float), support))
        self._rss.append(max(float(rss), 0.0))
        if lam is not None:
            self._lambdas.append(float(lam))

    def finish(self, info: SolverInfo) -> SolutionPath:
        sizes = [len(s) for s in self._indices]
        indptr = np.zeros(len(sizes) + 1, dtype=np.intp)
        np.cumsum(sizes, out=indptr[1:])
        return SolutionPath(
            n_features=self.n_features, indptr=indptr, indices=_cat(self._indices, np.intp),
            values=_cat(self._values, float), rss=np.array(self._rss),
            lambdas=np.array(self._lambdas) if self._lambdas else None, info=info,
        )


class PathEstimator:
    """Estimator plumbing shared by the path solvers (scikit-learn style).

    Subclasses store their parameters in ``__init__``, list the keyword ones in ``_params``
    and set ``_path`` / ``_path_gram`` to the public functions.  After ``fit`` (or
    ``fit_gram``): ``path_`` (SolutionPath), ``coef_`` (p,) and ``active_`` of the last
    point, ``n_iter_``, and ``lambda_`` (its λ) for the homotopy.
    """

    _params: tuple[str, ...] = ()
    max_active: int

    def _kwargs(self) -> dict:
        return {name: getattr(self, name) for name in self._params}

    def _set(self, path: SolutionPath):
        self.path_ = path
        empty = len(path) == 0
        self.coef_ = np.zeros(path.n_features) if empty else path.coef(-1)
        self.active_ = np.zeros(0, dtype=np.intp) if empty else path.support(-1).copy()
        self.n_iter_ = path.info.n_iter
        if path.lambdas is not None:
            self.lambda_ = float(path.lambdas[-1])
        return self

    def fit(self, A, y):
        """Fit on a design matrix A (n, p) and target y (n,); returns self."""
        return self._set(type(self)._path(A, y, self.max_active, **self._kwargs()))

    def fit_gram(self, G, b, yy, n_rows):
        """Fit on ``G = AᵀA`` (p, p), ``b = Aᵀy`` (p,), ``yy = yᵀy`` and n_rows; returns self."""
        return self._set(type(self)._path_gram(G, b, yy, n_rows, self.max_active,
                                               **self._kwargs()))

    def predict(self, A) -> np.ndarray:
        """``A @ coef_`` for A (n, p)."""
        return np.asarray(A, dtype=float) @ self.coef_
