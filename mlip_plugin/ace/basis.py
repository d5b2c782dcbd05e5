"""The ACE basis: specification, selection by total degree, JSON form and pruning.

Columns (basis functions) are ordered as follows:

1. the pair part, for each unordered species pair (a, b) (a ≤ b in the order of
   ``elements``) the functions k = 1 … ``pair_degree``;
2. the many-body part, for each centre species in the order of ``elements``, by correlation
   order ν = 1 … N (body order ν + 1), then by the sorted tuple of one-particle labels
   ``(species, n, l)`` and then by coupling index.

A many-body function of an atom i of the centre species is
``B(i) = Σ_m C[m] Π_t A_i[z_t n_t l_t m_t]`` with the atomic base
``A_i[z n l m] = Σ_{j: Z_j = z} R_n(r_ij; Z_i, z) Y_lm(r̂_ij)``; its column sums B over the
atoms of a configuration.  It is selected when ``Σ_t (n_t + w_L l_t) ≤ total_degree`` and
``Σ_t l_t`` is even (reflection invariance).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase.data import atomic_numbers, covalent_radii
from matscipy.neighbours import neighbour_list

from ..data.configuration import with_full_rank_cell
from ..errors import InputError
from .coupling import invariant_couplings
from .radial import AgnesiTransform

__all__ = ["ACEBasis", "BasisFunction", "Group", "r0_from_data", "basis_from_data",
           "check_cutoff", "MAX_CUTOFF"]

log = logging.getLogger(__name__)

FORMAT = "mlip_plugin.ace.ACEBasis"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class BasisFunction:
    """Readable description of one column.

    Attributes
    ----------
    kind : {"pair", "manybody"}
    species : tuple of str
        Pair: the two species.  Many-body: the centre species followed by the species of
        each factor.
    body_order : int
        2 for pair functions, ν + 1 for a many-body function of correlation order ν.
    nl : tuple of (n, l)
        Pair: ``((k, 0),)``.  Many-body: one (n, l) per factor.
    coupling : int
        Index among the linearly independent couplings of the same labels (0 for pairs).
    """

    kind: str
    species: tuple
    body_order: int
    nl: tuple
    coupling: int = 0

    def to_dict(self) -> dict:
        return {"kind": self.kind, "species": list(self.species), "body_order": self.body_order,
                "nl": [list(x) for x in self.nl], "coupling": self.coupling}


@dataclass(frozen=True)
class Group:
    """Many-body functions sharing one tuple of one-particle labels (one coupling block).

    ``labels`` are ``(species_index, n, l)`` per factor; ``coef`` has shape
    ``(n_functions, Π(2 l_t + 1))`` over real m indices; ``columns`` are their column indices.
    """

    center: int
    labels: tuple
    coef: np.ndarray = field(repr=False)
    columns: np.ndarray = field(repr=False)


def _default_r0(elements: Sequence[str]) -> dict:
    return {(a, b): float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]])
            for a in elements for b in elements}


class ACEBasis:
    """Linear ACE basis (pair part + many-body invariants up to a correlation order).

    Parameters
    ----------
    elements : sequence of str
        Chemical symbols the basis covers.
    correlation_order : int
        Largest correlation order N (body order N + 1), ≥ 1.
    total_degree : float
        Largest total degree ``Σ (n_t + w_L l_t)``, at least the correlation order.
    r_cut : float
        Cutoff radius (Å), > 0.
    w_L : float
        Weight of l in the degree (default 1.5, as ACEpotentials.jl).
    r0 : float or mapping, optional
        Typical neighbour distance (Å) per species pair, as a number or a mapping from
        ``(a, b)`` or ``"a-b"`` to a number (pairs not in the mapping keep the default;
        a pair with a species outside ``elements`` is an error).  Default: sum of the
        covalent radii.  The distance transform is steepest there and the core repulsion
        starts at 0.75 r0; :func:`basis_from_data` reads r0 from training data instead
        (what the fitting pipeline does).
    transform_pq : tuple of float
        Exponents (p, q) of the Agnesi distance transform (default (2, 4)).
    pair_degree : int, optional
        Number of pair functions per species pair (default: ``int(total_degree)``); 0 drops
        the pair part.
    pair_exponent : float
        Exponent e of the repulsive pair envelope (r0/r)^e (default 1, Coulomb-type).
    selected : sequence of int, optional
        Keep only these columns of the full basis (used by :meth:`prune`).
    """

    def __init__(self, elements: Sequence[str], correlation_order: int, total_degree: float,
                 r_cut: float, *, w_L: float = 1.5, r0: float | Mapping | None = None,
                 transform_pq: tuple = (2.0, 4.0), pair_degree: int | None = None,
                 pair_exponent: float = 1.0, selected: Sequence[int] | None = None):
        self.elements = _check_elements(elements)
        self.correlation_order = _check_int("correlation_order", correlation_order, 1, 8)
        self.r_cut = check_cutoff(r_cut)
        self.total_degree = _check_positive("total_degree", total_degree)
        if self.total_degree < self.correlation_order:
            raise InputError(
                f"total_degree={total_degree!r} is too small for correlation_order="
                f"{correlation_order}: every factor has degree ≥ 1 (n ≥ 1), so total_degree "
                f"must be at least {correlation_order}; raise total_degree or lower the order")
        self.w_L = _check_positive("w_L", w_L)
        self.transform_pq = tuple(float(x) for x in transform_pq)
        p, q = self.transform_pq
        if not (0 < p < q and p * (4 * q - 2) > 2 * q):
            raise InputError(f"transform_pq={transform_pq!r} is not allowed; give (p, q) "
                             "with 0 < p < q and p (4q - 2) > 2q (else the transform has no "
                             "inflection at r0 and a pole inside the cutoff), e.g. (2, 4)")
        self.pair_degree = int(self.total_degree if pair_degree is None else pair_degree)
        if self.pair_degree < 0:
            raise InputError(f"pair_degree={pair_degree!r} must be >= 0")
        self.pair_exponent = _check_positive("pair_exponent", pair_exponent)
        self.r0 = _resolve_r0(self.elements, r0, self.r_cut)
        self._build(selected)

    # ------------------------------------------------------------------ construction
    def _build(self, selected):
        from .spec import enumerate_groups

        ns = len(self.elements)
        functions: list[BasisFunction] = []
        self.pair_pairs = [(a, b) for a in range(ns) for b in range(a, ns)]
        for a, b in self.pair_pairs:
            for k in range(1, self.pair_degree + 1):
                functions.append(BasisFunction(
                    "pair", (self.elements[a], self.elements[b]), 2, ((k, 0),)))
        n_pair = len(functions)
        groups = []
        for center, labels in enumerate_groups(ns, self.correlation_order, self.total_degree,
                                               self.w_L):
            ls = tuple(lab[2] for lab in labels)
            pattern = tuple(labels.index(lab) for lab in labels)
            coef = invariant_couplings(ls, pattern)
            if coef.shape[0] == 0:
                continue
            cols = np.arange(len(functions), len(functions) + coef.shape[0])
            for c in range(coef.shape[0]):
                functions.append(BasisFunction(
                    "manybody",
                    (self.elements[center],) + tuple(self.elements[z] for z, _, _ in labels),
                    len(labels) + 1, tuple((n, l) for _, n, l in labels), c))
            groups.append(Group(center, labels, coef.reshape(coef.shape[0], -1), cols))
        self._full_size = len(functions)
        self._apply_selection(functions, n_pair, groups, selected)

    def _apply_selection(self, functions, n_pair, groups, selected):
        if selected is None:
            keep = np.arange(len(functions))
        else:
            keep = np.unique(np.asarray(selected, dtype=int))
            if keep.size and (keep[0] < 0 or keep[-1] >= len(functions)):
                raise InputError(
                    f"selected columns must lie in [0, {len(functions)}); got "
                    f"{keep.min()}…{keep.max()}")
        new_index = -np.ones(len(functions), dtype=int)
        new_index[keep] = np.arange(keep.size)
        self.selected = keep
        self.spec = [functions[i] for i in keep]
        self.pair_columns = np.array([(new_index[i], i) for i in range(n_pair)
                                      if new_index[i] >= 0], dtype=int).reshape(-1, 2)
        self.groups = []
        for g in groups:
            mask = new_index[g.columns] >= 0
            if mask.any():
                self.groups.append(Group(g.center, g.labels, g.coef[mask],
                                         new_index[g.columns[mask]]))

    # ------------------------------------------------------------------ properties
    @property
    def size(self) -> int:
        """Number of basis functions (columns)."""
        return len(self.spec)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (f"ACEBasis(elements={self.elements}, correlation_order={self.correlation_order}"
                f", total_degree={self.total_degree}, r_cut={self.r_cut}, size={self.size})")

    def transform(self, a: int, b: int) -> AgnesiTransform:
        """Distance transform for a centre of species index a and a neighbour of b."""
        return AgnesiTransform(self.r0[(self.elements[a], self.elements[b])], self.r_cut,
                               *self.transform_pq)

    def species_index(self, symbols: Sequence[str], where: str = "atoms") -> np.ndarray:
        """Indices of ``symbols`` in ``elements``; InputError for an unknown species."""
        table = {s: i for i, s in enumerate(self.elements)}
        try:
            return np.array([table[s] for s in symbols], dtype=np.int64)
        except KeyError as err:
            raise InputError(
                f"{where}: species {err.args[0]!r} is not in the basis (elements="
                f"{self.elements}); build the basis with all species of the data") from None

    def summary(self) -> dict:
        """Counts of functions by kind and body order."""
        out: dict = {}
        for f in self.spec:
            key = "pair" if f.kind == "pair" else f"body_order_{f.body_order}"
            out[key] = out.get(key, 0) + 1
        return out

    # ------------------------------------------------------------------ JSON form
    def to_dict(self) -> dict:
        """JSON-safe description; ``from_dict`` rebuilds the identical basis."""
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "elements": list(self.elements), "correlation_order": self.correlation_order,
            "total_degree": self.total_degree, "r_cut": self.r_cut, "w_L": self.w_L,
            "r0": {f"{a}-{b}": v for (a, b), v in self.r0.items()},
            "transform_pq": list(self.transform_pq), "pair_degree": self.pair_degree,
            "pair_exponent": self.pair_exponent,
            "selected": None if self.size == self._full_size else self.selected.tolist(),
            "fingerprint": self.fingerprint(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping) -> ACEBasis:
        """Inverse of :meth:`to_dict`; checks the coupling fingerprint."""
        from ..errors import ModelFormatError

        if doc.get("format") != FORMAT or doc.get("format_version", 0) > FORMAT_VERSION:
            raise ModelFormatError(
                f"not an ACEBasis document of a known version (format={doc.get('format')!r}, "
                f"format_version={doc.get('format_version')!r}); expected {FORMAT} version "
                f"≤ {FORMAT_VERSION}")
        basis = cls(doc["elements"], doc["correlation_order"], doc["total_degree"], doc["r_cut"],
                    w_L=doc["w_L"], r0=doc["r0"], transform_pq=tuple(doc["transform_pq"]),
                    pair_degree=doc["pair_degree"], pair_exponent=doc["pair_exponent"],
                    selected=doc.get("selected"))
        fp = doc.get("fingerprint")
        mine = basis.fingerprint()
        if fp is not None and (len(fp) != len(mine)
                               or not np.allclose(mine, fp, rtol=1e-8, atol=1e-12)):
            raise ModelFormatError(
                "the rebuilt ACE basis differs from the stored one (coupling fingerprint "
                "mismatch); the file was written by an incompatible version")
        return basis

    def fingerprint(self) -> list:
        """Two numbers per many-body function that identify its coupling coefficients."""
        out = np.zeros(self.size)
        out2 = np.zeros(self.size)
        for g in self.groups:
            w = np.cos(np.arange(g.coef.shape[1]) * 0.7)
            out[g.columns] = g.coef @ w
            out2[g.columns] = np.abs(g.coef).sum(axis=1)
        return [float(x) for x in out] + [float(x) for x in out2]

    def prune(self, support: Sequence[int]) -> tuple[ACEBasis, np.ndarray]:
        """Basis of only the columns ``support``; returns it and the kept column indices.

        ``index_map[k]`` is the column of this basis that column k of the new basis is.
        Only the radial functions, harmonics and couplings these columns need are evaluated.
        """
        support = np.unique(np.asarray(support, dtype=int))
        if support.size and (support[0] < 0 or support[-1] >= self.size):
            raise InputError(f"support must index columns in [0, {self.size}); got "
                             f"{support.min()}…{support.max()}")
        doc = self.to_dict()
        doc["selected"] = self.selected[support].tolist()
        doc["fingerprint"] = None
        return ACEBasis.from_dict(doc), support


def _check_elements(elements) -> list[str]:
    if isinstance(elements, str):
        elements = [elements]
    out = list(elements)
    if not out:
        raise InputError("elements is empty; give at least one chemical symbol, e.g. ['Si']")
    for s in out:
        if s not in atomic_numbers or s == "X":
            raise InputError(f"elements contains {s!r}, which is not a chemical symbol")
    if len(set(out)) != len(out):
        raise InputError(f"elements={out} contains duplicates; list each species once")
    return out


def _check_int(name, value, lo, hi) -> int:
    if not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise InputError(f"{name}={value!r} is not allowed; give an integer in [{lo}, {hi}]")
    return int(value)


#: Largest cutoff (Å) a basis takes: local potentials use 4–12 Å, and the neighbour lists
#: grow as r_cut³ (a cutoff of 1e6 Å, a unit slip, would exhaust the memory, not fail)
MAX_CUTOFF = 20.0


def check_cutoff(r_cut, name: str = "r_cut") -> float:
    """``r_cut`` (Å) as a float; InputError naming ``name`` unless 0 < r_cut ≤
    :data:`MAX_CUTOFF`."""
    v = _check_positive(name, r_cut)
    if v > MAX_CUTOFF:
        raise InputError(f"{name}={r_cut!r} Å is not allowed: a local potential's cutoff is a "
                         f"few Å (4–12 Å is usual, at most {MAX_CUTOFF:g} Å here); is it in "
                         "another unit (Bohr, nm)? Give it in Å")
    return v


def _check_positive(name, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}={value!r} is not a number; give a positive number") from None
    if not np.isfinite(v) or v <= 0:
        raise InputError(f"{name}={value!r} is not allowed; it must be a finite number > 0")
    return v


def _resolve_r0(elements, r0, r_cut) -> dict:
    table = _default_r0(elements)
    given = set()
    if r0 is None:
        pass
    elif isinstance(r0, Mapping):
        for key, v in r0.items():
            pair = tuple(key.split("-")) if isinstance(key, str) else tuple(key)
            if len(pair) != 2:
                raise InputError(f"r0 key {key!r} is not a species pair; write 'Si-O' or "
                                 "('Si', 'O')")
            unknown = sorted(set(pair) - set(elements))
            if unknown:
                raise InputError(f"r0[{key!r}] names species {unknown} that are not in the "
                                 f"basis (elements={elements}); give r0 only for pairs of "
                                 "these species")
            a, b = pair
            table[(a, b)] = table[(b, a)] = _check_positive(f"r0[{key!r}]", v)
            given |= {(a, b), (b, a)}
    else:
        v = _check_positive("r0", r0)
        table = dict.fromkeys(table, v)
        given = set(table)
    bad = {k: v for k, v in table.items() if v >= r_cut and k in given}
    if bad:
        raise InputError(f"r0 must be smaller than r_cut={r_cut}; got {bad}")
    wide = sorted(k for k, v in table.items() if v >= r_cut)
    if wide:  # covalent-radii defaults of large atoms, no data: stay inside the cutoff
        log.info("r0: the covalent-radii default of %s reaches r_cut=%g Å; using %g Å",
                 ", ".join("-".join(k) for k in wide), r_cut, 0.5 * r_cut)
        table.update(dict.fromkeys(wide, 0.5 * r_cut))
    return {k: table[k] for k in sorted(table)}


def r0_from_data(configs: Iterable, elements: Sequence[str], r_cut: float, *,
                 max_configs: int = 200) -> dict[str, float]:
    """Typical nearest-neighbour distance per species pair, read from configurations.

    For every atom of species a that has a neighbour of species b within ``r_cut``, the
    distance to its nearest b neighbour is one sample of the pair (a, b) (and of (b, a));
    ``r0["a-b"]`` is the median of the samples.  Pairs that never come within ``r_cut`` in
    the data (a species seen only as an isolated atom, say) are left out and logged (the
    basis then keeps its covalent-radii default for them).  A configuration without any
    pair within ``r_cut`` gives no samples; open cells (molecules, slabs whose cell has a
    zero vector) are fine.

    Parameters
    ----------
    configs : iterable of Configuration or ase.Atoms
    elements : sequence of str
        Species of the basis; atoms of other species are ignored.
    r_cut : float
        Cutoff radius (Å) of the basis.
    max_configs : int
        At most this many configurations, evenly spaced through ``configs``, are read.

    Returns
    -------
    dict
        ``{"a-b": r0}`` with a before b in the order of ``elements``.
    """
    elements = _check_elements(elements)
    r_cut = check_cutoff(r_cut)
    configs = list(configs)
    if len(configs) > max_configs:
        configs = [configs[i] for i in np.linspace(0, len(configs) - 1, max_configs).astype(int)]
    ns, index = len(elements), {e: k for k, e in enumerate(elements)}
    samples: dict[tuple[int, int], list] = {}
    for c in configs:
        atoms = getattr(c, "atoms", c)
        z = np.array([index.get(sym, -1) for sym in atoms.get_chemical_symbols()])
        i, j, d = neighbour_list("ijd", with_full_rank_cell(atoms, r_cut), r_cut)
        keep = (z[i] >= 0) & (z[j] >= 0)
        key, d = i[keep] * ns + z[j[keep]], d[keep]  # (atom, neighbour species)
        if key.size == 0:  # no pair within r_cut (an isolated atom): nothing to sample
            continue
        order = np.lexsort((d, key))
        key, d = key[order], d[order]
        first = np.r_[True, key[1:] != key[:-1]]  # the nearest neighbour of each species
        a, b, nearest = z[key[first] // ns], key[first] % ns, d[first]
        for pair in set(zip(a.tolist(), b.tolist())):
            m = (a == pair[0]) & (b == pair[1])
            samples.setdefault(tuple(sorted(pair)), []).append(nearest[m])
    missing = [f"{elements[a]}-{elements[b]}" for a in range(ns) for b in range(a, ns)
               if (a, b) not in samples]
    if missing:
        log.info("r0 from data: no pair within r_cut=%.3g Å for %s; these keep the "
                 "covalent-radii default", r_cut, ", ".join(missing))
    return {f"{elements[a]}-{elements[b]}": float(np.median(np.concatenate(v)))
            for (a, b), v in sorted(samples.items())}


def basis_from_data(elements: Sequence[str], configs: Iterable, **kwargs) -> ACEBasis:
    """:class:`ACEBasis` whose ``r0`` is read from ``configs`` unless it is given.

    ``r0=None`` or ``"data"`` (default): :func:`r0_from_data` on ``configs`` (pairs absent
    from the data keep the covalent-radii default); ``r0="covalent"``: the sum of the
    covalent radii; a number or mapping: as given.  The other keywords go to ACEBasis.
    """
    r0 = kwargs.pop("r0", None)
    if isinstance(r0, str) and r0 not in ("data", "covalent"):
        raise InputError(f"r0={r0!r} is not known; give a distance in Å, a mapping per "
                         "species pair, 'data' (read from the training data) or 'covalent'")
    if r0 == "covalent" or (r0 in (None, "data") and "r_cut" not in kwargs):
        r0 = None  # (without r_cut, ACEBasis says what is missing)
    elif r0 in (None, "data"):
        r0 = r0_from_data(configs, elements, kwargs["r_cut"]) or None
        log.info("r0 read from the data (median nearest-neighbour distance): %s", r0)
    return ACEBasis(elements, r0=r0, **kwargs)
