"""Fit a linear ACE model: assemble → scale by the prior → solve → select → de-bias.

Everything runs on the Gram form (``AᵀWA``, ``AᵀWy``, ``yᵀWy``) accumulated over chunks of
configurations (:func:`mlip_plugin.ace.gram_form`), so memory is O(p²) whatever the size of
the data, and chunks can be computed by any ``concurrent.futures``-style executor.
"""

from __future__ import annotations

import difflib
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..ace.basis import ACEBasis, basis_from_data
from ..ace.design import GramForm, gram_form, refuse_unfittable
from ..ace.model_eval import CoreRepulsion, energy_forces_virial
from ..ace.prior import smoothness_prior
from ..data import Configuration, Weights, assign_weights, hash_configs, random_split
from ..data.configuration import min_distance
from ..data.e0 import resolve_e0
from ..errors import DependentColumnWarning, FitError, InputError
from ..models.base import Model
from ..models.linear_ace import LinearACEModel
from ..models.provenance import Provenance
from ..solvers import asp, bayes, dense, omp, path, sbl, tsvd
from .config import PATH_SOLVERS, FitSettings, coerce_settings
from .metrics import error_metrics

__all__ = ["FitResult", "fit", "PathFit"]

log = logging.getLogger(__name__)

COMMITTEE_SIZE = 8


@dataclass
class PathFit:
    """What is needed to build the model at any point of a solution path."""

    basis: ACEBasis
    path: path.SolutionPath
    e0: dict
    train_gram: GramForm
    validation_gram: GramForm | None
    prior: np.ndarray
    tsvd: bool

    def support_at(self, n_active: int) -> tuple[np.ndarray, np.ndarray]:
        sel = self.path.select(path.by_size(n_active))
        return self._debias(sel.support, sel.values)

    def _debias(self, support, values):
        if not self.tsvd or self.validation_gram is None or len(support) == 0:
            return support, values
        t, v = self.train_gram, self.validation_gram
        res = tsvd.tsvd_debias_gram(t.AtWA, t.AtWy, support, v.AtWA, v.AtWy, v.ytWy, v.n_rows,
                                    prior=self.prior)
        return res.support, res.values

    def model_at(self, n_active: int, provenance: Provenance | None = None) -> LinearACEModel:
        """The model of at most ``n_active`` functions along the path (TSVD de-biased)."""
        support, values = self.support_at(n_active)
        return LinearACEModel.from_support(self.basis, support, values, self.e0,
                                           provenance=provenance)


@dataclass
class FitResult:
    """A fitted model, its metrics (metrics.json's ``errors`` and more) and the path."""

    model: LinearACEModel | Model
    metrics: dict
    path_fit: PathFit | None = None
    timings: dict = field(default_factory=dict)


def without_core(configs: Sequence[Configuration], basis: ACEBasis) -> list[Configuration]:
    """Labels minus the fixed core repulsion that every LinearACEModel adds.

    Only configurations with a pair closer than the core radius feel the core; they are
    copied with the core's energy, forces and stress subtracted, so the fitted model (ACE
    plus core) reproduces the original labels.  The others are returned as they are.
    """
    core = CoreRepulsion.for_basis(basis)
    r_in = max(core.radius.values())
    probe, zero = basis.prune([0])[0], np.zeros(1)
    out, n_close = [], 0
    for c in configs:
        if min_distance(c.atoms, r_in) >= r_in:
            out.append(c)
            continue
        res = energy_forces_virial(probe, c.atoms, zero, core)
        c = c.copy()
        n_close += 1
        if c.energy is not None:
            c.energy -= res.energy
        if c.forces is not None:
            c.forces = c.forces - res.forces
        if c.stress is not None:
            c.stress = c.stress + res.virial / c.volume  # stress_core = −virial_core / V
        out.append(c)
    if n_close:
        log.info("%d configurations have pairs inside the core radius (%.3g Å): the core "
                 "repulsion is subtracted from their labels before fitting", n_close, r_in)
    return out


def _refuse_unfittable(configs, validation) -> None:
    """InputError naming, by their positions in the caller's ``configs`` or ``validation``
    (not in the shuffled training split), the configurations without atoms (an energy row
    of weight w_E / √0) and those whose stress label has no cell volume (their virial
    target ``-volume * stress``, and the core's share of it, is undefined)."""
    for name, part in (("configs", configs), ("validation", validation or [])):
        refuse_unfittable(list(part), name)


def unknown_config_types(keys, configs) -> tuple[list, list, dict]:
    """The ``keys`` (a setting's config types) that are the config_type of none of
    ``configs``: ``(unknown, present, hints)``, both lists sorted, ``hints`` mapping an
    unknown key to its closest present type (case-insensitive, a case slip being the
    commonest typo) where there is one."""
    present = sorted({str(c.config_type) for c in configs})
    unknown = sorted(set(keys) - set(present))
    lower = {p.lower(): p for p in present}
    hints = {k: lower[m[0]] for k in unknown
             if (m := difflib.get_close_matches(k.lower(), list(lower), n=1, cutoff=0.6))}
    return unknown, present, hints


def _refuse_unknown_config_types(by_config_type: Mapping, configs) -> None:
    """InputError naming the ``fit.by_config_type`` keys that are the config_type of no
    training or validation configuration (a typo was ignored without a word)."""
    unknown, present, hints = unknown_config_types(by_config_type, configs)
    if unknown:
        said = [f"{k!r} → {v!r}?" for k, v in hints.items()]
        raise InputError(
            f"fit.by_config_type names {unknown}, the config_type of no training or "
            f"validation configuration (theirs: {present}){'; did you mean ' if said else ''}"
            f"{', '.join(said)}; correct the names or leave them out")


def split_for_fit(configs, validation, s: FitSettings):
    """(train, validation) as :func:`fit` splits ``configs``: ``validation`` when given,
    else a seeded ``s.validation_fraction`` of them (none below 4 configurations)."""
    configs = list(configs)
    if not configs:
        raise InputError("fit needs at least one training configuration; got none")
    if any(not isinstance(c, Configuration) for c in configs):
        raise InputError("fit takes Configuration objects (mlip_plugin.data.read_configs)")
    if validation is not None:
        return configs, list(validation)
    if s.validation_fraction <= 0 or len(configs) < 4:
        return configs, []
    parts = random_split(configs, validation=s.validation_fraction, seed=s.seed)
    return parts.take(configs, "train"), parts.take(configs, "validation")


def _solve_path(s: FitSettings, G: GramForm, gamma):
    """The solution path.  Basis functions numerically dependent on those selected are
    skipped, which is expected with a large basis: their number is logged once (and kept
    in the path's ``info``), not each shown as a warning."""
    args = (G.AtWA, G.AtWy, G.ytWy, G.n_rows, s.max_active)
    normalize = not s.select_on_prior  # False: select among the columns of A Γ⁻¹
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DependentColumnWarning)
        if s.solver == "omp":
            p = omp.omp_path_gram(*args, prior=gamma, normalize=normalize,
                                  on_dependent="skip")
        elif s.solver == "ard":  # sequential evidence maximisation: scale invariant
            p = sbl.ard_path_gram(*args, prior=gamma)
        else:
            p = asp.asp_path_gram(*args, prior=gamma, normalize=normalize)
    if p.info.n_skipped:
        log.info("%s skipped %d basis functions numerically dependent on those selected "
                 "before them (expected with a large basis; no action needed)", s.solver,
                 p.info.n_skipped)
    return p


def _solve_dense(s: FitSettings, G: GramForm, gamma):
    if s.solver == "rrqr":
        return dense.rrqr_gram(G.AtWA, G.AtWy, prior=gamma)
    if s.solver == "ridge":
        return dense.ridge_gram(G.AtWA, G.AtWy, 1e-8 * np.trace(G.AtWA) / len(G.AtWy),
                                prior=gamma)
    if s.solver == "blr":
        return bayes.blr_gram(G.AtWA, G.AtWy, G.ytWy, G.n_rows, prior=gamma)
    raise ValueError(f"no dense solver {s.solver!r}")


def _committee(sol, G: GramForm, gamma, seed: int) -> np.ndarray:
    """Samples of the BLR posterior: c = D (x + L z), Σ = (β D G D + λ I)⁻¹ = L Lᵀ."""
    d = 1.0 / gamma
    M = sol.noise_precision * (G.AtWA * np.outer(d, d))
    M[np.diag_indices_from(M)] += float(sol.weight_precision[0])
    cov = np.linalg.inv(M)
    cov = 0.5 * (cov + cov.T)
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(len(d)), cov, size=COMMITTEE_SIZE,
                                method="eigh")
    return sol.coef[None, :] + z * d[None, :]


def _path_summary(p: path.SolutionPath, sel) -> list[dict]:
    sizes = p.sizes
    out = []
    for i in range(len(p)):
        row = {"n_active": int(sizes[i]), "rss": float(p.rss[i])}
        if p.lambdas is not None:
            row["lambda"] = float(p.lambdas[i])
        if sel.scores is not None:
            row["validation_rmse"] = float(sel.scores[i])
        out.append(row)
    return out


def fit(configs: Sequence[Configuration], settings: FitSettings | Mapping | None = None, *,
        validation: Sequence[Configuration] | None = None,
        test: Sequence[Configuration] | None = None, executor=None) -> FitResult:
    """Fit a linear ACE model (or, with ``settings.model="kernel"``, a GDML kernel model)
    to labelled configurations.

    Parameters
    ----------
    configs : sequence of Configuration
        Training data (split into train/validation by ``settings.validation_fraction``
        unless ``validation`` is given).  Their fit weights come from the settings
        (``weights``, ``by_config_type``); the configurations themselves are not modified.
    settings : FitSettings or mapping, optional
    validation, test : sequence of Configuration, optional
        Validation data picks the model along the path and the TSVD truncation; test data
        is only evaluated.
    executor : concurrent.futures-style executor, optional
        Computes the Gram chunks in parallel.

    Returns
    -------
    FitResult
    """
    s = coerce_settings(FitSettings, "fit", settings)
    t0 = time.perf_counter()
    if s.model == "kernel":
        from ..kernels import arrays_from_configs

        arrays_from_configs(configs)  # one molecule: errors name positions in ``configs``
    train, val = split_for_fit(configs, validation, s)
    if s.model == "kernel":
        from .fit_kernel import fit_kernel

        return fit_kernel(train, val, test, s)
    _refuse_unfittable(configs, validation)
    weights = Weights(**s.weights)
    _refuse_unknown_config_types(s.by_config_type, [*train, *val])
    # a by_config_type entry overrides only the weights it names
    by_type = {k: Weights(**{**s.weights, **v}) for k, v in s.by_config_type.items()}
    own = {c.weights for c in [*train, *val]} - {Weights(), weights, *by_type.values()}
    if own:
        log.warning("the fit settings' weights (fit.weights, fit.by_config_type) replace the "
                    "configurations' own weights %s; put them in the settings to use them",
                    sorted(own))
    # the caller's configurations keep their weights: the fit weighs copies
    train, val = ([replace(c, weights=c.weights) for c in part] for part in (train, val))
    for part in (train, val):
        assign_weights(part, weights, by_type)
    trained = {x for c in train for x in c.symbols}
    for name, part in (("validation", val), ("test", test or [])):
        unseen = sorted({x for c in part for x in c.symbols} - trained)
        if unseen:
            raise InputError(
                f"species {unseen} appear in {name} configurations but in no training "
                "configuration, so the model cannot learn them: move configurations with "
                "them into training (or change fit.seed / fit.validation_fraction of the "
                "random split)")
    e0 = resolve_e0(train, s.e0)
    elements = sorted({x for c in [*train, *val] for x in c.symbols})
    try:
        basis = basis_from_data(elements, [*train, *val], **s.basis)
    except TypeError as err:
        raise InputError(f"fit.basis: {err}") from err
    gamma = smoothness_prior(basis, **s.prior)
    log.debug("basis %s; prior %s; weights %s (by config type %s); e0 %s", basis.summary(),
              s.prior, s.weights, s.by_config_type, e0)
    train_fit, val_fit = without_core(train, basis), without_core(val, basis)
    log.info("fitting %s (%d functions) on %d train / %d validation configurations",
             s.solver, basis.size, len(train), len(val))
    G = gram_form(basis, train_fit, e0, executor=executor)
    Gv = gram_form(basis, val_fit, e0, executor=executor) if val else None
    t_assembly = time.perf_counter() - t0
    path_fit, committee = None, None
    if s.solver in PATH_SOLVERS:
        p = _solve_path(s, G, gamma)
        rule = (path.by_validation_gram(Gv.AtWA, Gv.AtWy, Gv.ytWy, Gv.n_rows)
                if (Gv is not None and s.selection == "validation") else path.final())
        sel = p.select(rule)
        path_fit = PathFit(basis, p, e0, G, Gv, gamma, s.tsvd)
        support, values = path_fit._debias(sel.support, sel.values)
        info, summary = p.info, _path_summary(p, sel)
    else:
        sol = _solve_dense(s, G, gamma)
        support = np.flatnonzero(sol.coef)
        values = sol.coef[support]
        info, summary = sol.info, []
        if s.solver == "blr":
            committee = _committee(sol, G, gamma, s.seed)[:, support]
    if len(support) == 0:
        raise FitError(f"the {s.solver} fit selected no basis function; check the data "
                       "(are there energies and forces?) and max_active")
    t_solve = time.perf_counter() - t0 - t_assembly
    prov = Provenance(
        training_data_sha256=hash_configs(train), n_train=len(train), n_validation=len(val),
        spec={"basis": basis.to_dict() | {"fingerprint": None}, "size": basis.size,
              "summary": basis.summary()},
        prior=dict(s.prior), weights={"default": dict(s.weights),
                                      "by_config_type": dict(s.by_config_type)},
        solver=s.solver, solver_parameters={"max_active": s.max_active,
                                            "select_on_prior": s.select_on_prior,
                                            "selection": s.selection, "tsvd": s.tsvd,
                                            "stop_reason": info.stop_reason,
                                            "n_iter": info.n_iter,
                                            "warnings": list(info.warnings)},
        seed=s.seed, selected_support=[int(k) for k in support], path_summary=summary,
        extra={"e0": e0})
    model = LinearACEModel.from_support(basis, support, values, e0, committee=committee,
                                        provenance=prov)
    errors = {"train": error_metrics(model, train)}
    if val:
        errors["validation"] = error_metrics(model, val)
    if test:
        errors["test"] = error_metrics(model, list(test))
    timings = {"assembly_s": t_assembly, "solve_s": t_solve,
               "total_s": time.perf_counter() - t0}
    prov.validation_metrics = errors
    prov.timings = timings
    metrics = {"errors": errors, "n_basis": basis.size, "n_selected": len(support),
               "solver": s.solver, "path": summary, "timings": timings}
    log.info("fit done: %d of %d functions, train force MAE %.4f eV/Å", len(support),
             basis.size, errors["train"]["force_mae_eV_per_A"] or float("nan"))
    return FitResult(model=model, metrics=metrics, path_fit=path_fit, timings=timings)
