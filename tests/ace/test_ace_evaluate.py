"""Forces and virials against finite differences; invariances; cutoff; supercells; rank."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from mlip_plugin.ace import ACEBasis, evaluate_basis, site_values
from mlip_plugin.errors import InputError

H = 1e-5


def _energy(basis, atoms):
    return evaluate_basis(basis, [atoms], forces=False).energy[0]


def _fd_forces(basis, atoms, idx):
    out = np.zeros((len(idx), 3, basis.size))
    for a, i in enumerate(idx):
        for x in range(3):
            p, m = atoms.copy(), atoms.copy()
            p.positions[i, x] += H
            m.positions[i, x] -= H
            out[a, x] = -(_energy(basis, p) - _energy(basis, m)) / (2 * H)
    return out


def _fd_virial(basis, atoms):
    """W_ab = -dE/dε_ab under x → (I + ε) x (cell and atoms), Voigt."""
    W = np.zeros((3, 3, basis.size))
    for a in range(3):
        for b in range(3):
            out = []
            for sign in (1, -1):
                F = np.eye(3)
                F[a, b] += sign * H
                s = atoms.copy()
                s.set_cell(atoms.cell.array @ F.T, scale_atoms=True)
                out.append(_energy(basis, s))
            W[a, b] = -(out[0] - out[1]) / (2 * H)
    return np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])


def _rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("name", ["bulk", "surface", "vacancy", "small_cell", "cluster"])
def test_forces_fd_si(si_basis, structures, name):
    atoms = structures[name]
    vals = evaluate_basis(si_basis, [atoms])
    idx = [0, len(atoms) - 1]
    fd = _fd_forces(si_basis, atoms, idx)
    assert _rel_err(vals.forces[idx], fd) < 1e-6
    if atoms.pbc.all():
        assert _rel_err(vals.virial[0], _fd_virial(si_basis, atoms)) < 1e-6


def test_forces_virial_fd_tial(tial_basis, structures):
    atoms = structures["tial"]
    vals = evaluate_basis(tial_basis, [atoms])
    assert _rel_err(vals.forces[[0, 1]], _fd_forces(tial_basis, atoms, [0, 1])) < 1e-6
    assert _rel_err(vals.virial[0], _fd_virial(tial_basis, atoms)) < 1e-6


def test_forces_fd_order5(si_basis5, structures):
    atoms = structures["vacancy"]
    vals = evaluate_basis(si_basis5, [atoms])
    assert _rel_err(vals.forces[[2]], _fd_forces(si_basis5, atoms, [2])) < 1e-6


def test_tial_fixture_forces(tial_basis, shared_data):
    from mlip_plugin.data import read_configs

    configs = read_configs(shared_data / "ace_fixtures" / "TiAl_tiny.xyz", energy_key="energy",
                           forces_key="force", virial_key="virial")
    atoms = max((c.atoms for c in configs), key=len)
    vals = evaluate_basis(tial_basis, [atoms])
    assert _rel_err(vals.forces[[0]], _fd_forces(tial_basis, atoms, [0])) < 1e-6


def test_batch_equals_single(si_basis, structures):
    names = ["bulk", "vacancy", "small_cell"]
    batch = evaluate_basis(si_basis, [structures[n] for n in names])
    start = 0
    for c, n in enumerate(names):
        one = evaluate_basis(si_basis, [structures[n]])
        k = len(structures[n])
        assert np.allclose(batch.energy[c], one.energy[0], rtol=1e-13, atol=1e-12)
        assert np.allclose(batch.forces[start:start + k], one.forces[0:k], atol=1e-12)
        assert np.allclose(batch.virial[c], one.virial[0], atol=1e-12)
        start += k


def test_empty_configuration_in_a_batch(si_basis, structures):
    """A configuration without atoms has zero values; np.add.reduceat gave it the first
    site row of the configuration after it (IndexError when it came last), and a model
    could not evaluate an empty Atoms without a cell (numpy error in the open-cell
    completion)."""
    from mlip_plugin.models.linear_ace import LinearACEModel

    bulk_ = structures["bulk"]
    for empty in (Atoms(cell=[6, 6, 6], pbc=True), Atoms()):
        batch = evaluate_basis(si_basis, [bulk_, empty, bulk_, empty])
        one = evaluate_basis(si_basis, [bulk_])
        assert not batch.energy[1].any() and not batch.energy[3].any()
        assert np.array_equal(batch.energy[2], one.energy[0])
        assert not batch.virial[1].any()
    model = LinearACEModel(si_basis, np.ones(si_basis.size), {"Si": -1.0})
    pred = model.predict(Atoms())
    assert pred.energy == 0.0 and pred.forces.shape == (0, 3)


def _cluster_env(rng, n, r_cut, species=None):
    pos = np.zeros((n + 1, 3))
    k = 1
    while k <= n:
        v = rng.uniform(-r_cut, r_cut, 3)
        if 1.4 < np.linalg.norm(v) < r_cut and np.linalg.norm(pos[:k] - v, axis=1).min() > 1.0:
            pos[k] = v
            k += 1
    return Atoms(species or f"Si{n + 1}", positions=pos)


def test_invariances(si_basis, rng, rotation):
    atoms = _cluster_env(rng, 9, si_basis.r_cut)
    ref = site_values(si_basis, atoms)
    scale = np.abs(ref).max()
    moved = atoms.copy()
    moved.positions = atoms.positions @ rotation.T + np.array([3.0, -1.0, 7.5])
    assert np.allclose(site_values(si_basis, moved), ref, rtol=0, atol=1e-10 * scale)
    mirrored = atoms.copy()
    mirrored.positions = atoms.positions * np.array([1, 1, -1])
    assert np.allclose(site_values(si_basis, mirrored), ref, rtol=0, atol=1e-10 * scale)
    perm = np.r_[0, rng.permutation(np.arange(1, len(atoms)))]
    assert np.allclose(site_values(si_basis, atoms[perm]), ref[perm], rtol=0,
                       atol=1e-10 * scale)


def test_invariance_periodic(tial_basis, structures, rotation):
    atoms = structures["tial"]
    ref = evaluate_basis(tial_basis, [atoms])
    rot = atoms.copy()
    rot.set_cell(atoms.cell.array @ rotation.T, scale_atoms=True)
    rot.positions += 0.37
    new = evaluate_basis(tial_basis, [rot])
    assert np.allclose(new.site, ref.site, atol=1e-10 * np.abs(ref.site).max())
    assert np.allclose(new.forces, np.einsum("xy,iyk->ixk", rotation, ref.forces),
                       atol=1e-10 * np.abs(ref.forces).max())


def test_values_vanish_at_cutoff(si_basis):
    """A neighbour moving out through r_cut: values and forces go to zero continuously."""
    for r in (si_basis.r_cut - 1e-4, si_basis.r_cut):
        dimer = Atoms("Si2", positions=[[0, 0, 0], [0.3 * r, 0.5 * r, np.sqrt(0.66) * r]])
        vals = evaluate_basis(si_basis, [dimer])
        bound = 1e-6 if r < si_basis.r_cut else 1e-14
        assert np.abs(vals.energy).max() < bound
        assert np.abs(vals.forces).max() < 1e3 * bound


def test_supercell_same_site_values(tial_basis, structures):
    atoms = structures["tial"]
    one = site_values(tial_basis, atoms)
    sup = site_values(tial_basis, atoms.repeat((2, 1, 3)))
    assert np.allclose(sup, np.tile(one, (6, 1)), rtol=1e-11, atol=1e-12)


def test_full_rank_on_random_environments(rng):
    """N = 3, D = 15: the many-body site values of random environments have full rank.

    So do the pair functions on their own.  Together with the 2-body (ν = 1) functions they
    are only numerically independent: both are smooth functions of r on the same interval
    (reported, not asserted).
    """
    basis = ACEBasis(["Si"], correlation_order=3, total_degree=15, r_cut=5.0)
    envs = [_cluster_env(rng, int(rng.integers(4, 14)), 5.0) for _ in range(800)]
    vals = evaluate_basis(basis, envs, forces=False)
    centre = np.flatnonzero(np.r_[1, np.diff(vals.atom_cfg)])
    X = vals.site[centre]
    X = X / np.linalg.norm(X, axis=0)
    assert X.shape == (800, basis.size)
    pair = np.array([f.kind == "pair" for f in basis.spec])
    for cols in (~pair, pair):
        s = np.linalg.svd(X[:, cols], compute_uv=False)
        assert np.sum(s > 1e-12 * s[0]) == cols.sum()


def test_bad_inputs(si_basis):
    with pytest.raises(InputError, match="species 'Cu' is not in the basis"):
        evaluate_basis(si_basis, [Atoms("SiCu", positions=[[0, 0, 0], [2, 0, 0]])])
    with pytest.raises(InputError, match="overlapping atoms"):
        evaluate_basis(si_basis, [Atoms("Si2", positions=[[0, 0, 0], [0.05, 0, 0]])])
