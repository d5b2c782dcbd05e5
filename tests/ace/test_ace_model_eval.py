"""Adjoint evaluation of a linear model against the design matrix and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_plugin.ace import energy_forces_virial, evaluate_basis
from mlip_plugin.errors import InputError


@pytest.mark.parametrize("name", ["bulk", "surface", "tial"])
def test_adjoint_matches_basis(si_basis, tial_basis, structures, rng, name):
    basis = tial_basis if name == "tial" else si_basis
    atoms = structures[name]
    c = rng.normal(size=basis.size)
    vals = evaluate_basis(basis, [atoms])
    res = energy_forces_virial(basis, atoms, c)
    assert res.energy == pytest.approx(vals.energy[0] @ c, rel=1e-12)
    assert np.allclose(res.site_energies, vals.site @ c, rtol=1e-11, atol=1e-11)
    assert np.allclose(res.forces, vals.forces @ c, rtol=1e-10, atol=1e-10)
    assert np.allclose(res.virial, vals.virial[0] @ c, rtol=1e-10, atol=1e-10)


def test_adjoint_finite_differences(si_basis, structures, rng):
    atoms = structures["vacancy"]
    c = rng.normal(size=si_basis.size)
    res = energy_forces_virial(si_basis, atoms, c)
    h = 1e-5
    for i, x in [(0, 0), (5, 2)]:
        p, m = atoms.copy(), atoms.copy()
        p.positions[i, x] += h
        m.positions[i, x] -= h
        fd = -(energy_forces_virial(si_basis, p, c).energy
               - energy_forces_virial(si_basis, m, c).energy) / (2 * h)
        assert fd == pytest.approx(res.forces[i, x], rel=1e-6, abs=1e-8)


def test_pruned_model_equals_full(tial_basis, structures, rng):
    c = np.zeros(tial_basis.size)
    support = rng.choice(tial_basis.size, size=12, replace=False)
    c[support] = rng.normal(size=12)
    small, index_map = tial_basis.prune(support)
    full = energy_forces_virial(tial_basis, structures["tial"], c)
    part = energy_forces_virial(small, structures["tial"], c[index_map])
    assert part.energy == pytest.approx(full.energy, rel=1e-12)
    assert np.allclose(part.forces, full.forces, atol=1e-11)


def test_coef_shape_checked(si_basis, structures):
    with pytest.raises(InputError, match="coef has shape"):
        energy_forces_virial(si_basis, structures["bulk"], np.ones(3))


def test_many_vectors_equal_one_at_a_time(tial_basis, structures, rng):
    from mlip_plugin.ace.model_eval import CoreRepulsion, energy_forces_virial_many

    atoms = structures["tial"]
    core = CoreRepulsion.for_basis(tial_basis)
    coefs = rng.normal(size=(3, tial_basis.size))
    many = energy_forces_virial_many(tial_basis, atoms, coefs, core)
    for c, res in zip(coefs, many):
        one = energy_forces_virial(tial_basis, atoms, c, core)
        assert res.energy == pytest.approx(one.energy, rel=1e-13)
        assert np.allclose(res.forces, one.forces, rtol=1e-12, atol=1e-12)
        assert np.allclose(res.virial, one.virial, rtol=1e-12, atol=1e-12)
    with pytest.raises(InputError, match="coefs has shape"):
        energy_forces_virial_many(tial_basis, atoms, coefs[0])


def test_a_committee_keeps_every_members_product_terms(si_basis, structures, monkeypatch):
    """A committee model evaluates model + members at every call: each vector's product
    terms are built once, not again at every call (a one-entry cache rebuilt them all)."""
    import mlip_plugin.ace.model_eval as me

    built = []
    real = me._Terms
    monkeypatch.setattr(me, "_Terms", lambda *a: built.append(1) or real(*a))
    # vectors no other test evaluated (the cache lives on the session's basis)
    coefs = np.random.default_rng(20261207).normal(size=(9, si_basis.size))
    for _ in range(3):
        me.energy_forces_virial_many(si_basis, structures["bulk"], coefs)
    assert len(built) == 9
