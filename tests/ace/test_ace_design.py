"""Design-matrix rows, targets, weights and the streamed Gram form."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mlip_plugin.ace import GramForm, design_matrix, evaluate_basis, gram_form
from mlip_plugin.data import Configuration, Weights
from mlip_plugin.errors import InputError

E0 = {"Ti": -1.5, "Al": -0.7}


@pytest.fixture(scope="module")
def configs(structures):
    rng_module = np.random.default_rng(7)
    out = []
    for k, atoms in enumerate([structures["tial"], structures["tial"].repeat((1, 1, 2))]):
        n = len(atoms)
        out.append(Configuration(atoms, energy=-3.0 * n + k, forces=rng_module.normal(size=(n, 3)),
                                 stress=rng_module.normal(size=6) * 1e-2,
                                 weights=Weights(energy=30, forces=2, virial=0.5)))
    n = len(structures["tial"])
    out.append(Configuration(structures["tial"], energy=-11.0))  # energy only
    out.append(Configuration(structures["tial"], forces=np.ones((n, 3))))  # forces only
    return out


def test_rows_targets_weights(tial_basis, configs):
    dm = design_matrix(tial_basis, configs, E0)
    n0, n1 = configs[0].n_atoms, configs[1].n_atoms
    expected_rows = (1 + 3 * n0 + 6) + (1 + 3 * n1 + 6) + 1 + 3 * n0
    assert dm.A.shape == (expected_rows, tial_basis.size)
    assert list(dm.row_kind[:2]) == ["E", "F"] and dm.row_kind[3 * n0 + 1] == "V"
    assert np.array_equal(np.bincount(dm.config_index), [1 + 3 * n0 + 6, 1 + 3 * n1 + 6, 1,
                                                         3 * n0])
    c0 = configs[0]
    e_ref = sum(E0[s] for s in c0.symbols)
    assert dm.y[0] == pytest.approx(c0.energy - e_ref)
    assert np.allclose(dm.y[1:1 + 3 * n0], c0.forces.ravel())
    assert np.allclose(dm.y[1 + 3 * n0:7 + 3 * n0], c0.virial)
    assert dm.w[0] == pytest.approx(30 / np.sqrt(n0))
    assert np.all(dm.w[1:1 + 3 * n0] == 2)
    assert np.allclose(dm.w[1 + 3 * n0:7 + 3 * n0], 0.5 / np.sqrt(n0))
    vals = evaluate_basis(tial_basis, [c0.atoms])
    assert np.allclose(dm.A[0], vals.energy[0])
    assert np.allclose(dm.A[1:1 + 3 * n0], vals.forces.reshape(3 * n0, -1))
    assert np.allclose(dm.A[1 + 3 * n0:7 + 3 * n0], vals.virial[0])


def test_passes_do_not_change_result(tial_basis, configs):
    a = design_matrix(tial_basis, configs, E0, atoms_per_pass=1)
    b = design_matrix(tial_basis, configs, E0, atoms_per_pass=10_000)
    assert np.allclose(a.A, b.A, rtol=1e-12, atol=1e-12)


class _SubmitOnly:
    """An executor with only ``.submit`` (like a minimal Dask-style client)."""

    def __init__(self):
        self.calls = 0

    def submit(self, fn, *args):
        self.calls += 1

        class _Done:
            def __init__(self, value):
                self.value = value

            def result(self):
                return self.value
        return _Done(fn(*args))


def test_gram_form_matches_design(tial_basis, configs):
    dm = design_matrix(tial_basis, configs, E0)
    Aw, yw = dm.weighted()
    ref = GramForm(Aw.T @ Aw, Aw.T @ yw, float(yw @ yw), dm.n_rows)
    serial = gram_form(tial_basis, configs, E0, chunk_size=1)
    with ThreadPoolExecutor(2) as pool:
        threaded = gram_form(tial_basis, configs, E0, chunk_size=2, executor=pool)
    sub = _SubmitOnly()
    submitted = gram_form(tial_basis, configs, E0, chunk_size=3, executor=sub)
    assert sub.calls == 2
    for g in (serial, threaded, submitted):
        assert g.n_rows == dm.n_rows
        assert np.allclose(g.AtWA, ref.AtWA, rtol=1e-10, atol=1e-10)
        assert np.allclose(g.AtWy, ref.AtWy, rtol=1e-10, atol=1e-10)
        assert g.ytWy == pytest.approx(ref.ytWy, rel=1e-12)
    total = GramForm.zeros(tial_basis.size) + serial
    assert total.n_rows == serial.n_rows


def test_design_bad_inputs(tial_basis, si_basis, configs):
    with pytest.raises(InputError, match="chunk_size=0 is not allowed"):
        gram_form(tial_basis, configs, E0, chunk_size=0)
    with pytest.raises(InputError, match="neither .map nor .submit"):
        gram_form(tial_basis, configs, E0, executor=object())
    with pytest.raises(InputError, match="configs is empty"):
        design_matrix(tial_basis, [], E0)
    with pytest.raises(InputError, match="must be Configuration objects"):
        design_matrix(tial_basis, [configs[0].atoms], E0)
    with pytest.raises(InputError, match="no E0 for species"):
        design_matrix(tial_basis, configs, {"Ti": 0.0})
    with pytest.raises(InputError, match="is not in the basis"):
        design_matrix(si_basis, configs, E0)
    with pytest.raises(InputError, match="different bases"):
        GramForm.zeros(3) + GramForm.zeros(4)
    with pytest.raises(InputError, match="at least one Gram form"):
        GramForm.accumulate([])


def test_configuration_without_atoms_is_refused(tial_basis, configs):
    """Its energy row had the weight w_E / √0 = inf (and, in a batch, another
    configuration's values)."""
    from ase import Atoms

    empty = Configuration(Atoms(cell=[5, 5, 5], pbc=True), energy=0.0)
    with pytest.raises(InputError, match=r"configurations \[1\] have no atoms"):
        design_matrix(tial_basis, [configs[0], empty], E0)


def test_gram_form_names_the_position_in_its_configs_not_in_a_chunk(tial_basis, configs):
    """gram_form hands chunks to design_matrix, whose refusal named the position within
    the chunk: [0] for the 4th configuration with chunk_size=3."""
    from ase import Atoms

    empty = Configuration(Atoms(cell=[5, 5, 5], pbc=True), energy=0.0)
    with pytest.raises(InputError, match=r"configurations \[3\] have no atoms"):
        gram_form(tial_basis, [*configs[:3], empty], E0, chunk_size=3)
    molecule = Configuration(Atoms("Ti2", positions=[[0, 0, 0], [2.6, 0, 0]]), energy=-3.0,
                             stress=np.full(6, 0.01))
    with pytest.raises(InputError, match=r"configurations \[4\] have a stress label"):
        gram_form(tial_basis, [*configs, molecule], E0, chunk_size=2)


def test_isolated_atom_rows_are_zero(si_basis):
    from ase import Atoms

    c = Configuration(Atoms("Si"), energy=-158.5, forces=np.zeros((1, 3)),
                      config_type="isolated_atom")
    dm = design_matrix(si_basis, [c], {"Si": -158.5})
    assert dm.A.shape == (4, si_basis.size) and not dm.A.any()
    assert np.allclose(dm.y, 0.0)


def test_stress_without_cell_volume_is_refused(tial_basis, configs):
    """Its virial target -volume * stress was 0 whatever the stress."""
    from ase import Atoms

    molecule = Configuration(Atoms("Ti2", positions=[[0, 0, 0], [2.6, 0, 0]]), energy=-3.0,
                             stress=np.full(6, 0.01))
    with pytest.raises(InputError, match=r"configurations \[1\] have a stress label but a "
                                         "cell without volume"):
        design_matrix(tial_basis, [configs[0], molecule], E0)
