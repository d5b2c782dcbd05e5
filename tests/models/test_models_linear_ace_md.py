"""A fitted linear ACE model in molecular dynamics: exact forces/stress and NVE energy drift."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from mlip_plugin.ace import ACEBasis, energy_forces_virial
from mlip_plugin.ace.model_eval import CoreRepulsion
from mlip_plugin.data import read_configs
from mlip_plugin.errors import InputError
from mlip_plugin.models import load_model
from mlip_plugin.models.linear_ace import LinearACEModel
from mlip_plugin.pipeline.fit import fit

#: NVE steps run by the test (1 fs each); benchmarks/calculator.py --nve reports 5000.
NVE_STEPS = 1500


class _ModelCalculator(Calculator):
    """Minimal ASE wrapper (the tests do not depend on the calculators package)."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, model):
        super().__init__()
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pred = self.model.predict(self.atoms)
        self.results = {"energy": pred.energy, "forces": pred.forces, "stress": pred.stress}


@pytest.fixture(scope="module")
def si_model(shared_data, tmp_path_factory):
    """A small OMP fit of basis (3, 12) on half of Zuo et al.'s Si training set, saved and
    loaded back (so the MD runs the model as a file holds it)."""
    configs = read_configs(shared_data / "zuo2020" / "Si_train.extxyz", energy_key="energy",
                           forces_key="forces", stress_key="stress")[::2]
    res = fit(configs, {"solver": "omp", "max_active": 120,
                        "basis": {"correlation_order": 3, "total_degree": 12, "r_cut": 5.5}})
    path = res.model.save(tmp_path_factory.mktemp("md") / "si.json")
    return load_model(path)


def _diamond(seed: int, rattle: float = 0.05):
    atoms = bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(rattle, seed=seed)
    return atoms


def test_fitted_model_forces_and_stress_are_gradients(si_model):
    atoms = _diamond(1, rattle=0.1)
    pred = si_model.predict(atoms)
    h = 1e-5
    for i, x in [(0, 0), (17, 1), (40, 2)]:
        p, m = atoms.copy(), atoms.copy()
        p.positions[i, x] += h
        m.positions[i, x] -= h
        fd = -(si_model.predict(p).energy - si_model.predict(m).energy) / (2 * h)
        assert fd == pytest.approx(pred.forces[i, x], rel=1e-6, abs=1e-8)
    # stress = (1/V) ∂E/∂ε under a homogeneous strain of cell and positions (Voigt xy: ε_xy)
    for v, (a, b) in [(0, (0, 0)), (5, (0, 1))]:
        e = []
        for s in (h, -h):
            eps = np.eye(3)
            eps[a, b] += s / (2 if a != b else 1)
            eps[b, a] += s / 2 if a != b else 0.0
            strained = atoms.copy()
            strained.set_cell(atoms.cell @ eps, scale_atoms=True)
            e.append(si_model.predict(strained).energy)
        fd = (e[0] - e[1]) / (2 * h) / atoms.get_volume()
        assert fd == pytest.approx(pred.stress[v], rel=1e-5, abs=1e-8)


def test_fitted_model_is_translation_and_permutation_invariant(si_model):
    atoms = _diamond(2)
    ref = si_model.predict(atoms)
    moved = atoms.copy()
    moved.positions += [0.3, -1.1, 2.2]
    perm = np.random.default_rng(0).permutation(len(atoms))
    shuffled = atoms[perm]
    assert si_model.predict(moved).energy == pytest.approx(ref.energy, abs=1e-9)
    out = si_model.predict(shuffled)
    assert out.energy == pytest.approx(ref.energy, abs=1e-9)
    assert np.allclose(out.forces, ref.forces[perm], atol=1e-10)


@pytest.mark.slow
def test_nve_energy_drift_below_1_mev_per_atom(si_model):
    """64 Si atoms from 600 K, velocity Verlet at 1 fs: the total energy stays within
    1 meV/atom of its start (and the run really moves: kinetic energy changes)."""
    atoms = _diamond(3, rattle=0.0)
    atoms.calc = _ModelCalculator(si_model)
    thermalize_momenta(atoms, temperature_K=600, rng=np.random.default_rng(3))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    e0 = atoms.get_potential_energy() + atoms.get_kinetic_energy()
    total, kinetic = [], []

    def record():
        total.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())
        kinetic.append(atoms.get_kinetic_energy())

    dyn.attach(record, interval=10)
    dyn.run(NVE_STEPS)
    deviation = np.max(np.abs(np.array(total) - e0)) / len(atoms)
    assert deviation < 1e-3
    assert np.ptp(kinetic) / len(atoms) > 0.005  # the atoms move (≳ 40 K fluctuations)


# ----------------------------------------------------------------- core repulsion
@pytest.fixture(scope="module")
def attractive_model():
    """A small model whose pair part is strongly attractive at short range (Σ_k c_k < 0)."""
    basis = ACEBasis(["Si"], correlation_order=2, total_degree=6, r_cut=4.5)
    coef = np.random.default_rng(5).normal(scale=0.05, size=basis.size)
    coef[basis.pair_columns[:, 0]] = -1.0
    return basis, coef


def _dimer(r: float):
    return Atoms("Si2", positions=[[0, 0, 0], [r, 0.1 * r, 0.05 * r]], cell=[12, 12, 12],
                 pbc=False)


def test_core_repulsion_prevents_collapse(attractive_model):
    basis, coef = attractive_model
    bare = LinearACEModel(basis, coef, {"Si": 0.0}, core=False)
    safe = LinearACEModel(basis, coef, {"Si": 0.0})
    rs = [0.4, 0.7, 1.0, 1.3]
    e_bare = [bare.predict(_dimer(r)).energy for r in rs]
    e_safe = [safe.predict(_dimer(r)).energy for r in rs]
    assert np.all(np.diff(e_bare) > 0)      # without the core the atoms would fall together
    assert np.all(np.diff(e_safe) < 0)      # with it the energy rises as they approach
    r_in = safe.core.radius[("Si", "Si")]
    assert e_safe[0] > safe.predict(_dimer(r_in)).energy + 100.0
    far = _dimer(r_in + 0.01)
    assert safe.predict(far).energy == pytest.approx(bare.predict(far).energy, abs=1e-12)


def test_core_repulsion_forces_and_virial_are_gradients(attractive_model):
    basis, coef = attractive_model
    model = LinearACEModel(basis, coef, {"Si": 0.0},
                           core=CoreRepulsion.for_basis(basis, fraction=0.8, epsilon=2.0))
    atoms = bulk("Si", "diamond", 5.43, cubic=True)
    atoms.positions[1] = atoms.positions[0] + [0.7, 0.6, 0.5]   # 1.05 Å: inside r_in
    res = energy_forces_virial(basis, atoms, coef, model.core)
    h = 1e-6
    for i, x in [(0, 0), (1, 2), (3, 1)]:
        p, m = atoms.copy(), atoms.copy()
        p.positions[i, x] += h
        m.positions[i, x] -= h
        fd = -(energy_forces_virial(basis, p, coef, model.core).energy
               - energy_forces_virial(basis, m, coef, model.core).energy) / (2 * h)
        assert fd == pytest.approx(res.forces[i, x], rel=1e-6, abs=1e-6)
    e = []
    for s in (h, -h):
        strained = atoms.copy()
        strained.set_cell(atoms.cell * (1 + s), scale_atoms=True)
        e.append(energy_forces_virial(basis, strained, coef, model.core).energy)
    assert -(e[0] - e[1]) / (2 * h) == pytest.approx(res.virial[:3].sum(), rel=1e-6)


def test_core_repulsion_is_recorded_in_the_model_file(attractive_model, tmp_path):
    basis, coef = attractive_model
    core = CoreRepulsion.for_basis(basis, fraction=0.6, epsilon=3.0)
    model = LinearACEModel(basis, coef, {"Si": -1.0}, core=core)
    back = load_model(model.save(tmp_path / "m.json"))
    assert back.core == core
    atoms = _dimer(1.0)
    assert back.predict(atoms).energy == pytest.approx(model.predict(atoms).energy, rel=1e-12)
    none = load_model(LinearACEModel(basis, coef, {"Si": -1.0}, core=False).save(
        tmp_path / "n.json"))
    assert none.core is None


def test_core_repulsion_bad_input(attractive_model):
    basis, coef = attractive_model
    with pytest.raises(InputError, match="core='yes' is not allowed"):
        LinearACEModel(basis, coef, {"Si": 0.0}, core="yes")
    with pytest.raises(InputError, match="fraction=1.5 must be in"):
        CoreRepulsion.for_basis(basis, fraction=1.5)


def test_predict_gives_no_stress_without_a_3d_periodic_cell(attractive_model):
    """Stress exists only for 3-D periodic cells (documented); a cluster used to raise ASE's
    raw ValueError and a slab got a vacuum-dependent number."""
    basis, coef = attractive_model
    model = LinearACEModel(basis, coef, {"Si": 0.0})
    cluster = _dimer(2.4)
    slab = bulk("Si", "diamond", a=5.43, cubic=True)
    slab.pbc = [True, True, False]
    for atoms in (cluster, slab):
        pred = model.predict(atoms)
        assert pred.stress is None and np.isfinite(pred.energy)
    assert model.predict(bulk("Si", "diamond", a=5.43)).stress.shape == (6,)


@pytest.mark.parametrize("kwargs, match", [
    ({"radius": {("Si", "Si"): 6.0}}, "reach the cutoff"),
    ({"radius": {("Si", "Si"): 1.5}, "epsilon": -1.0}, "epsilon=-1.0 must be > 0"),
    ({"radius": {("Si", "Si"): float("nan")}}, "must be a finite number > 0"),
    ({"radius": {("Ge", "Ge"): 1.5}}, r"species \['Ge'\] are not in the basis"),
    ({"radius": {"SiSi": 1.5}}, "is not a species pair"),
])
def test_bad_core_repulsion_is_refused(attractive_model, kwargs, match):
    basis, coef = attractive_model
    with pytest.raises(InputError, match=match):
        LinearACEModel(basis, coef, {"Si": 0.0}, core=CoreRepulsion(**kwargs))


def test_core_radius_keys_as_written_in_model_files_work(attractive_model):
    """'Si-Si' (the form of model files) used to be ignored by the constructor: no core."""
    basis, coef = attractive_model
    by_string = LinearACEModel(basis, coef, {"Si": 0.0}, core=CoreRepulsion({"Si-Si": 1.6}))
    by_tuple = LinearACEModel(basis, coef, {"Si": 0.0},
                              core=CoreRepulsion({("Si", "Si"): 1.6}))
    bare = LinearACEModel(basis, coef, {"Si": 0.0}, core=False)
    e = [m.predict(_dimer(1.0)).energy for m in (by_string, by_tuple, bare)]
    assert e[0] == e[1] and e[0] > e[2] + 1.0


def test_nan_cell_is_a_named_error(attractive_model):
    basis, coef = attractive_model
    model = LinearACEModel(basis, coef, {"Si": 0.0})
    atoms = Atoms("Si", cell=[[3, 0, 0], [0, 3, 0], [0, 0, np.nan]], pbc=True)
    with pytest.raises(InputError, match="cell contains NaN"):
        model.predict(atoms)
