"""Basis specification, sizes, JSON round trip, pruning, priors and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk

from mlip_plugin.ace import ACEBasis, evaluate_basis, smoothness_prior
from mlip_plugin.ace.prior import radial_norms
from mlip_plugin.ace.radial import AgnesiTransform, radial_basis
from mlip_plugin.ace.spec import one_particle_labels
from mlip_plugin.errors import InputError, ModelFormatError


def _brute_force_groups(order, degree, w_L=1.5):
    """Label multisets with Σ deg ≤ D, even Σ l and 2 max l ≤ Σ l (the polygon condition
    for a rotation invariant in ⊗ V_l).  For ν ≤ 3 every such multiset has exactly one
    reflection-invariant coupling, identical labels included: (a, a, b) couples through
    the symmetric part of a ⊗ a (even L = b), (a, a, a) through the 3j symbol, symmetric
    for even a."""
    import itertools

    labels = one_particle_labels(1, degree, w_L)
    out = set()
    for nu in range(1, order + 1):
        for t in itertools.combinations_with_replacement(labels, nu):
            ls = [l for *_, l in t]
            if (sum(n + w_L * l for _, n, l in t) <= degree + 1e-9 and sum(ls) % 2 == 0
                    and 2 * max(ls) <= sum(ls)):
                out.add(tuple(t))
    return out


def test_sizes_and_paper_count():
    b = ACEBasis(["Si"], correlation_order=3, total_degree=25, r_cut=5.5)
    counts = b.summary()
    # the many-body part matches the 5292 functions of the sparse-ACE paper (Si, N=3, D=25)
    assert sum(v for k, v in counts.items() if k != "pair") == 5292
    assert counts["pair"] == 25 and b.size == 5317


def test_groups_match_brute_force():
    b = ACEBasis(["Si"], correlation_order=3, total_degree=10, r_cut=5.0)
    expected = _brute_force_groups(3, 10)
    assert {tuple(g.labels) for g in b.groups} == expected
    assert sum(f.kind == "manybody" for f in b.spec) == len(expected)  # one coupling each
    # N ≤ 2 couplings are unique and always exist when Σ l is even and l1 = l2
    b2 = ACEBasis(["Si"], correlation_order=2, total_degree=10, r_cut=5.0, pair_degree=0)
    pairs = [f for f in b2.spec if f.body_order == 3]
    assert all(f.nl[0][1] == f.nl[1][1] for f in pairs)


def test_spec_is_readable(tial_basis):
    spec = tial_basis.spec
    assert len(spec) == tial_basis.size
    kinds = [f.kind for f in spec]
    assert kinds.index("manybody") == kinds.count("pair")  # pair part first
    f = spec[-1]
    assert f.kind == "manybody" and f.species[0] in ("Ti", "Al")
    assert f.body_order == len(f.nl) + 1
    assert json.loads(json.dumps(f.to_dict()))["kind"] == "manybody"
    deg = [sum(n + 1.5 * l for n, l in g.nl) for g in spec if g.kind == "manybody"]
    assert max(deg) <= tial_basis.total_degree + 1e-9


def test_json_round_trip(tial_basis, structures):
    doc = json.loads(json.dumps(tial_basis.to_dict()))
    again = ACEBasis.from_dict(doc)
    assert again.size == tial_basis.size and again.spec == tial_basis.spec
    a = evaluate_basis(tial_basis, [structures["tial"]])
    b = evaluate_basis(again, [structures["tial"]])
    assert np.array_equal(a.energy, b.energy) and np.array_equal(a.forces, b.forces)


def test_from_dict_rejects_bad_documents(tial_basis):
    doc = tial_basis.to_dict()
    with pytest.raises(ModelFormatError, match="not an ACEBasis document"):
        ACEBasis.from_dict({**doc, "format_version": 99})
    fp = list(doc["fingerprint"])
    fp[-1] += 1.0
    with pytest.raises(ModelFormatError, match="fingerprint mismatch"):
        ACEBasis.from_dict({**doc, "fingerprint": fp})
    # a pruned basis whose selection is lost rebuilds to another size: named, not a numpy
    # broadcasting error
    pruned = tial_basis.prune([0, 5, 40])[0].to_dict()
    with pytest.raises(ModelFormatError, match="fingerprint mismatch"):
        ACEBasis.from_dict({**pruned, "selected": None})


def test_prune(tial_basis, structures):
    support = [0, 3, tial_basis.size - 1, tial_basis.size // 2]
    small, index_map = tial_basis.prune(support)
    assert small.size == 4 and list(index_map) == sorted(support)
    assert [small.spec[k] for k in range(4)] == [tial_basis.spec[i] for i in index_map]
    full = evaluate_basis(tial_basis, [structures["tial"]])
    part = evaluate_basis(small, [structures["tial"]])
    assert np.allclose(part.energy, full.energy[:, index_map], rtol=1e-13, atol=1e-13)
    assert np.allclose(part.forces, full.forces[..., index_map], rtol=1e-12, atol=1e-12)
    again = ACEBasis.from_dict(json.loads(json.dumps(small.to_dict())))
    assert again.spec == small.spec
    with pytest.raises(InputError, match="support must index columns"):
        tial_basis.prune([tial_basis.size])


def test_priors(si_basis):
    norms = radial_norms(40)
    for kind in ("algebraic", "exponential", "gaussian"):
        g = smoothness_prior(si_basis, kind)
        assert g.shape == (si_basis.size,) and np.all(g > 0)
    g = smoothness_prior(si_basis, "algebraic", p=4)
    for f, gk in zip(si_basis.spec, g):
        plain = sum(n**4 + (1.5 * l) ** 4 for n, l in f.nl)
        scale = 1.0 if f.kind == "pair" else np.prod([norms[n - 1] for n, _ in f.nl])
        assert gk == pytest.approx(plain * scale, rel=1e-12)
    # rougher functions get larger γ: pair k, ν = 1 functions in n, ν = 2 ones (n l, n l) in l
    k1 = next(k for k, f in enumerate(si_basis.spec) if f.nl == ((1, 0),) and f.kind == "pair")
    assert g[k1] == 1.0 and g.max() > 100
    manybody = {f.nl: gk for f, gk in zip(si_basis.spec, g) if f.kind == "manybody"}
    by_n = [manybody[(n, 0),] for n in range(1, 7)]
    by_l = [manybody[(1, l), (1, l)] for l in range(0, 3)]
    assert np.all(np.diff(by_n) > 0) and np.all(np.diff(by_l) > 0)
    with pytest.raises(InputError, match="not a smoothness prior"):
        smoothness_prior(si_basis, "cubic")
    with pytest.raises(InputError, match="overflows"):
        smoothness_prior(si_basis, "gaussian", sigma_n=100.0)
    with pytest.raises(InputError, match="p=0"):
        smoothness_prior(si_basis, "algebraic", p=0)


def test_radial_norms_are_those_of_the_radial_functions():
    """‖R_n‖ over y ∈ [-1, 1], from R_n(r) of radial_basis on a fine grid in r (dy = y'(r) dr),
    against the exact Gauss–Legendre values; and they fall like n^(-1/2)."""
    trans = AgnesiTransform(r0=2.3, r_cut=5.5)
    r = np.linspace(1e-6, 5.5, 200001)
    R, _ = radial_basis(r, trans, 12)
    _, dy = trans(r)
    w = np.abs(dy)
    numeric = np.sqrt(np.trapezoid(R**2 * w[:, None], r, axis=0))
    norms = radial_norms(12)
    assert numeric == pytest.approx(norms, rel=1e-5)
    # ∫ (1/16)(1 - y²)^4 dy = (1/16)(256/315)
    assert norms[0] == pytest.approx(np.sqrt(16 / 315), rel=1e-14)
    big = radial_norms(400)
    assert big[399] * np.sqrt(400) == pytest.approx(big[199] * np.sqrt(200), rel=0.02)


@pytest.mark.parametrize("kwargs,match", [
    ({"r_cut": 0.0}, "r_cut=0.0 is not allowed"),
    ({"r_cut": -1.0}, "r_cut=-1.0 is not allowed"),
    ({"total_degree": 2, "correlation_order": 3}, "total_degree=2 is too small"),
    ({"correlation_order": 0}, "correlation_order=0 is not allowed"),
    ({"elements": ["Si", "Xx"]}, "'Xx', which is not a chemical symbol"),
    ({"elements": []}, "elements is empty"),
    ({"elements": ["Si", "Si"]}, "duplicates"),
    ({"r0": 6.0}, "r0 must be smaller than r_cut"),
    ({"transform_pq": (4, 2)}, "0 < p < q"),
])
def test_bad_settings(kwargs, match):
    args = {"elements": ["Si"], "correlation_order": 2, "total_degree": 6, "r_cut": 5.0}
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        ACEBasis(**args)


def test_species_not_in_basis(si_basis):
    with pytest.raises(InputError, match="species 'C' is not in the basis"):
        evaluate_basis(si_basis, [bulk("C", "diamond", a=3.57)])


def test_r0_from_data_is_the_nearest_neighbour_distance_per_pair():
    """Diamond Si: every atom's nearest neighbour is at a√3/4; rock salt NaCl: Na–Cl at a/2,
    Na–Na and Cl–Cl at a/√2; a pair that never comes within r_cut (Si and Na are never in
    one configuration) is left out and keeps the covalent default in the basis; atoms of
    species outside the basis are ignored."""
    from mlip_plugin.ace import basis_from_data, r0_from_data

    si = bulk("Si", "diamond", a=5.43, cubic=True)
    assert r0_from_data([si], ["Si"], 5.0) == {"Si-Si": pytest.approx(5.43 * 3**0.5 / 4)}
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    r0 = r0_from_data([nacl, si], ["Cl", "Na", "Si"], 4.5)
    assert r0 == {"Cl-Cl": pytest.approx(5.64 / 2**0.5), "Cl-Na": pytest.approx(2.82),
                  "Na-Na": pytest.approx(5.64 / 2**0.5),
                  "Si-Si": pytest.approx(5.43 * 3**0.5 / 4)}
    b = basis_from_data(["Cl", "Na", "Si"], [nacl, si], correlation_order=2,
                        total_degree=4, r_cut=4.5)
    covalent = ACEBasis(["Cl", "Na", "Si"], 2, 4, 4.5).r0
    assert b.r0[("Na", "Cl")] == pytest.approx(2.82)
    assert b.r0[("Na", "Si")] == covalent[("Na", "Si")]
    assert r0_from_data([nacl], ["Na"], 4.5) == {"Na-Na": pytest.approx(5.64 / 2**0.5)}


def test_r0_from_data_skips_an_empty_structure():
    """An empty Atoms without a cell gave numpy's 'zero-size array' ValueError."""
    from ase import Atoms

    from mlip_plugin.ace import r0_from_data

    si = bulk("Si", "diamond", a=5.43, cubic=True)
    assert r0_from_data([Atoms(), si], ["Si"], 5.0) == r0_from_data([si], ["Si"], 5.0)
    assert r0_from_data([Atoms()], ["Si"], 5.0) == {}


def test_basis_from_data_options():
    """r0 None / "data" read the data, "covalent" the radii table, a number is kept; an
    unknown word is an InputError, a missing r_cut ACEBasis's TypeError; at most max_configs
    are read."""
    from mlip_plugin.ace import basis_from_data, r0_from_data

    si = bulk("Si", "diamond", a=5.43, cubic=True)
    kw = {"correlation_order": 2, "total_degree": 4, "r_cut": 5.0}
    nn = 5.43 * 3**0.5 / 4
    assert basis_from_data(["Si"], [si], **kw).r0[("Si", "Si")] == pytest.approx(nn)
    assert basis_from_data(["Si"], [si], r0="data", **kw).r0[("Si", "Si")] == pytest.approx(nn)
    assert basis_from_data(["Si"], [si], r0="covalent", **kw).r0 == ACEBasis(["Si"], **kw).r0
    assert basis_from_data(["Si"], [si], r0=2.0, **kw).r0[("Si", "Si")] == 2.0
    with pytest.raises(InputError, match="r0='nearest' is not known"):
        basis_from_data(["Si"], [si], r0="nearest", **kw)
    with pytest.raises(TypeError, match="r_cut"):
        basis_from_data(["Si"], [si], correlation_order=2, total_degree=4)
    squeezed = bulk("Si", "diamond", a=5.0, cubic=True)
    # configurations 0 and 3 are read: 8 samples of each distance, the median between them
    assert r0_from_data([squeezed] * 3 + [si], ["Si"], 5.0, max_configs=2) == {
        "Si-Si": pytest.approx((5.0 + 5.43) / 2 * 3**0.5 / 4)}


def test_transform_exponents_without_an_inflection_are_refused():
    """p (4q - 2) <= 2q gives a <= 0: a pole of the transform inside the cutoff."""
    with pytest.raises(InputError, match=r"transform_pq=\(0.2, 0.4\) is not allowed"):
        ACEBasis(["Si"], 2, 6, 5.0, transform_pq=(0.2, 0.4))
    ACEBasis(["Si"], 2, 6, 5.0, transform_pq=(1.0, 3.0))


def test_covalent_default_beyond_the_cutoff_is_clamped_but_a_given_one_is_an_error():
    from ase import Atoms

    from mlip_plugin.ace import basis_from_data

    data = [bulk("Si", "diamond", a=5.43), Atoms("Cs", cell=[10, 10, 10], pbc=True)]
    basis = basis_from_data(["Cs", "Si"], data, correlation_order=2, total_degree=6,
                            r_cut=4.5)
    assert basis.r0[("Cs", "Cs")] == 2.25  # covalent 4.88 Å, no Cs-Cs pair in the data
    with pytest.raises(InputError, match="r0 must be smaller than r_cut"):
        ACEBasis(["Si"], 2, 6, 4.5, r0={"Si-Si": 4.6})


@pytest.mark.parametrize("r0, match", [
    ({"Si-Si": 2.3, "Si-O": 1.6}, r"r0\['Si-O'\] names species \['O'\] that are not in"),
    ({("C", "C"): 1.5}, r"names species \['C'\] that are not in the basis"),
    ({"SiSi": 2.3}, "r0 key 'SiSi' is not a species pair"),
    ({("Si",): 2.3}, r"r0 key \('Si',\) is not a species pair"),
])
def test_r0_for_pairs_outside_the_basis_is_refused(r0, match):
    """An r0 entry for a species the basis lacks was kept in ``basis.r0``: the default core
    repulsion then named that species and LinearACEModel refused it, after the whole fit
    had run (a malformed key was a bare unpacking ValueError)."""
    with pytest.raises(InputError, match=match):
        ACEBasis(["Si"], 2, 6, 5.0, r0=r0)
