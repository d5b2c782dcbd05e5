"""Fit a GDML kernel force field: build the preconditioner → PCG (or the analytic solve) →
:class:`~mlip_plugin.models.kernel.KernelModel`; σ chosen on validation data when a grid
is given."""

from __future__ import annotations

import logging
import time
from dataclasses import fields, replace

from ..data import hash_configs
from ..errors import InputError
from ..kernels import TrainSettings, arrays_from_configs, select_sigma, train_gdml
from ..models.kernel import KernelModel
from ..models.provenance import Provenance
from .config import FitSettings
from .metrics import error_metrics

__all__ = ["fit_kernel", "train_settings", "check_kernel_fit"]

log = logging.getLogger(__name__)


def train_settings(kernel: dict) -> tuple[TrainSettings, list | None]:
    """TrainSettings from the ``fit.kernel`` mapping; ``sigmas`` (a grid) is returned apart."""
    doc = dict(kernel or {})
    sigmas = doc.pop("sigmas", None)
    allowed = {f.name for f in fields(TrainSettings)}
    unknown = set(doc) - allowed
    if unknown:
        raise InputError(f"unknown keys {sorted(unknown)} in fit.kernel; allowed: "
                         f"{sorted(allowed | {'sigmas'})}")
    return TrainSettings(**doc).check(), sigmas


def check_kernel_fit(train, val, s: FitSettings):
    """What a kernel fit of ``train`` (validation ``val``) with ``s`` would refuse, checked
    before any training (``fit`` and ``--dry-run``): frames of one molecule that can be made
    whole, the ``fit.kernel`` settings, a σ grid that is not empty and has validation data,
    and an integer preconditioner rank k within the system size.

    Returns ``(settings, sigmas, (R, z, E, F), (R_val, F_val) or None)``: the TrainSettings,
    the σ grid (or None) and the arrays of the training and validation frames."""
    from ..kernels.preconditioners import check_rank

    ts, sigmas = train_settings(s.kernel)
    R, z, E, F = arrays_from_configs(train)
    val_arrays = None
    if val:  # with a training frame first: the validation frames are the same molecule
        Rv, _, _, Fv = arrays_from_configs([train[0], *val])
        val_arrays = (Rv[1:], Fv[1:])
    if sigmas is not None:
        if len(list(sigmas)) == 0:
            raise InputError("fit.kernel.sigmas is empty; give a grid of length scales, e.g. "
                             "[10, 20, 40], or one fit.kernel.sigma")
        if not val:
            raise InputError("fit.kernel.sigmas needs validation data to choose σ; set "
                             "fit.validation_fraction > 0")
    if isinstance(ts.k, int) and not isinstance(ts.k, bool):
        n = R.size  # 3 · n_atoms · n_train
        try:
            check_rank(ts.k, n)
        except InputError as err:
            raise InputError(f"fit.kernel.k: {err} ({len(train)} training frames after the "
                             "validation split)") from None
    return ts, sigmas, (R, z, E, F), val_arrays


def fit_kernel(train, val, test, s: FitSettings):
    """Train on ``train``; pick σ on ``val`` if ``fit.kernel.sigmas`` is a grid."""
    from .fit import FitResult

    t0 = time.perf_counter()
    ts, sigmas, (R, z, E, F), val_arrays = check_kernel_fit(train, val, s)
    scan = None
    if sigmas is not None:
        Rv, Fv = val_arrays
        scan = select_sigma(R, z, E, F, Rv, Fv, sigmas, ts)
        gdml, ts = scan.model, replace(ts, sigma=scan.best_sigma)
    else:
        gdml = train_gdml(R, z, E, F, ts)
    t_train = time.perf_counter() - t0
    record = gdml.record.to_json() if gdml.record is not None else {}
    prov = Provenance(
        training_data_sha256=hash_configs(train), n_train=len(train), n_validation=len(val),
        spec={"kind": "gdml", "kernel": "matern52", "sigma": ts.sigma,
              "z": [int(k) for k in z]},
        solver=record.get("solver", ts.solver),
        solver_parameters={**{f.name: getattr(ts, f.name) for f in fields(ts)},
                           "record": record,
                           "sigma_scan": None if scan is None else {
                               "sigmas": scan.sigmas.tolist(),
                               "force_mae_eV_per_A": scan.force_mae.tolist()}},
        seed=ts.seed)
    model = KernelModel(gdml, prov)
    errors = {"train": error_metrics(model, train)}
    if val:
        errors["validation"] = error_metrics(model, val)
    if test:
        errors["test"] = error_metrics(model, list(test))
    timings = {"train_s": t_train, "total_s": time.perf_counter() - t0}
    prov.validation_metrics, prov.timings = errors, timings
    metrics = {"errors": errors, "n_basis": int(gdml.alpha.size), "n_selected":
               int(gdml.alpha.size), "solver": prov.solver, "path": [], "timings": timings,
               "kernel": {"sigma": ts.sigma, "lam": ts.lam, "k": record.get("k"),
                          "cg_iterations": record.get("n_iter")}}
    log.info("kernel fit: σ=%g, %s, train force MAE %.4f eV/Å", ts.sigma, prov.solver,
             errors["train"]["force_mae_eV_per_A"])
    return FitResult(model=model, metrics=metrics, path_fit=None, timings=timings)
