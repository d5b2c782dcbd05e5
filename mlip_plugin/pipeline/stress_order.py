"""Exchanged yz / xz stress components, found per config type from the data themselves.

Voigt order is a common source of silently wrong labels: ASE orders a stress as
(xx, yy, zz, yz, xz, xy), VASP's OUTCAR as (xx, yy, zz, xy, yz, zx), and a converter that
mixes the two exchanges shear components.  In the public Zuo et al. (2020) Si files the
``Elastic`` configurations have yz and xz exchanged while the other config types do not (the
Mo files are consistent); fitted as they are, those labels contradict each other and the
model's elastic response suffers (``examples/zuo_si_fit.py`` at total degree 16 and 300
functions: C11 −52 % of DFT with the stored labels, −16 % with the order detected here).

:func:`detect_stress_order` fits a small ACE model to energies and forces only (stresses
play no part in it), predicts the stresses of a sample of configurations and, per config
type, compares its shear components with the stored ones and with the stored ones with yz
and xz exchanged.  A config type is reported as exchanged when the exchanged labels fit with
less than half the absolute residual.  Nothing is changed until :func:`apply_stress_order`
is called with the result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..ace import ACEBasis, design_matrix
from ..data import Configuration, resolve_e0
from ..errors import InputError

__all__ = ["detect_stress_order", "apply_stress_order", "swap_yz_xz", "SWAP"]

log = logging.getLogger(__name__)

#: Voigt indices that exchange yz (3) and xz (4).
SWAP = [0, 1, 2, 4, 3, 5]

_CHUNK = 8  # configurations per design-matrix block of the probe
_RCOND = 1e-14  # eigenvalues of the probe's normal matrix kept, relative to the largest


def swap_yz_xz(configs: Iterable[Configuration], types: Iterable | None = None) -> None:
    """Exchange the yz and xz stress components in place, of the config types ``types`` (all
    configurations with a stress when None)."""
    types = None if types is None else set(types)
    for c in configs:
        if c.stress is not None and (types is None or c.config_type in types):
            c.stress = np.asarray(c.stress)[SWAP]


def apply_stress_order(configs: Iterable[Configuration], order: str | Mapping) -> None:
    """Apply a stress order in place: ``"file"`` (nothing), ``"swap"`` (every configuration)
    or a mapping ``{config_type: "swap" | "file"}`` from :func:`detect_stress_order`."""
    if isinstance(order, Mapping):
        bad = {t: o for t, o in order.items() if o not in ("swap", "file")}
        if bad:
            raise InputError(f"stress order {bad} is not 'swap' or 'file'")
        swap_yz_xz(configs, [t for t, o in order.items() if o == "swap"])
    elif order == "swap":
        swap_yz_xz(configs)
    elif order != "file":
        raise InputError(f"stress order {order!r} is not 'file', 'swap' or a mapping per "
                         "config type")


def detect_stress_order(configs: Sequence[Configuration], r_cut: float = 5.0,
                        n_sample: int = 60) -> tuple[dict, dict]:
    """Which config types have their yz and xz stress components exchanged.

    Parameters
    ----------
    configs : sequence of Configuration
        Labelled configurations (energies and forces fit the probe model; those with a
        stress are compared).
    r_cut : float
        Cutoff (Å) of the probe model, basis (correlation order 2, total degree 10).
    n_sample : int
        About this many configurations with a stress are used, spread evenly over the
        config types, at least one of each.

    Returns
    -------
    order : dict
        ``{config_type: "swap" or "file"}`` for every config type with stresses; all
        ``"file"`` when fewer than 5 configurations carry one.
    scores : dict
        ``{config_type: {"file": residual, "swap": residual}}``, the summed absolute shear
        residuals (eV, virial units) of the stored and the exchanged labels.

    Notes
    -----
    The probe's normal equations are accumulated a few configurations at a time, so its
    memory is that of one (p, p) matrix (p: the probe basis size, 39 functions for one
    element, a few thousand for five), not of the sample's design matrix.
    """
    with_stress = [c for c in configs if c.stress is not None]
    types = sorted({c.config_type for c in with_stress}, key=str)
    if len(with_stress) < 5:
        return {t: "file" for t in types}, {}
    per_type = max(1, n_sample // len(types))
    sample = []
    for t in types:  # evenly spread over each config type
        of_t = [c for c in with_stress if c.config_type == t]
        sample += of_t[::-(-len(of_t) // per_type)][:per_type]
    elements = sorted({x for c in configs for x in c.symbols})
    e0 = resolve_e0(list(configs), "auto")
    basis = ACEBasis(elements, 2, 10, r_cut)
    G, b = np.zeros((basis.size, basis.size)), np.zeros(basis.size)
    A_v, y_v, v_types = [], [], []
    for start in range(0, len(sample), _CHUNK):
        chunk = sample[start:start + _CHUNK]
        dm = design_matrix(basis, chunk, e0)
        ef, v = dm.row_kind != "V", dm.row_kind == "V"
        a, y = dm.A[ef] * dm.w[ef, None], dm.y[ef] * dm.w[ef]
        G += a.T @ a
        b += a.T @ y
        A_v.append(dm.A[v])
        y_v.append(dm.y[v])
        v_types += [chunk[i].config_type for i in dm.config_index[v][::6]]
    lam, V = np.linalg.eigh(G)
    keep = lam > _RCOND * lam[-1]
    coef = V[:, keep] @ ((V[:, keep].T @ b) / lam[keep])
    pred = (np.vstack(A_v) @ coef).reshape(-1, 6)
    lab = np.concatenate(y_v).reshape(-1, 6)
    order, scores = {}, {}
    for t in types:
        m = np.array([s == t for s in v_types])
        kept = float(np.abs(pred[m][:, 3:5] - lab[m][:, 3:5]).sum())
        swapped = float(np.abs(pred[m][:, 3:5] - lab[m][:, [4, 3]]).sum())
        scores[t] = {"file": kept, "swap": swapped}
        order[t] = "swap" if swapped < 0.5 * kept else "file"
    log.info("stress yz/xz order per config type: %s (shear residuals of an energy+force "
             "fit: %s)", order, scores)
    return order, scores
