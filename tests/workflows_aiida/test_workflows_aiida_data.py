"""The data types: training sets round-trip configurations; model nodes carry provenance."""

from __future__ import annotations

import io

import numpy as np
import pytest
from aiida import orm
from aiida.common.exceptions import ValidationError
from ase.calculators.emt import EMT
from workflows_aiida_helpers import PerAtomTestModel

from mlip_plugin import InputError
from mlip_plugin.data import Configuration, Weights
from mlip_plugin.models import Provenance
from mlip_plugin.workflows.aiida.data import ModelData, TrainingSetData


@pytest.fixture
def labelled(tiny_atoms):
    """Labelled configurations of different sizes; the last has no stress, one no forces."""
    configs = []
    for k, atoms in enumerate(tiny_atoms):
        a = atoms.copy()
        a.calc = EMT()
        configs.append(Configuration(
            atoms=atoms.copy(), energy=a.get_potential_energy(), forces=a.get_forces(),
            stress=a.get_stress(), config_type=atoms.info["config_type"],
            weights=Weights(energy=10.0 + k, forces=1.0, virial=0.5),
            info={"structure_id": atoms.info["structure_id"]}))
    configs[-1].stress = None
    configs[0].forces = None
    return configs


def test_training_set_round_trips_configurations(aiida_profile, labelled):
    node = TrainingSetData.from_configurations(labelled).store()
    back = orm.load_node(node.pk).get_configurations()
    assert node.numsteps == len(labelled)
    assert node.numsites == sum(c.n_atoms for c in labelled)
    for a, b in zip(labelled, back, strict=True):
        assert np.array_equal(a.atoms.numbers, b.atoms.numbers)
        np.testing.assert_array_equal(a.atoms.positions, b.atoms.positions)
        np.testing.assert_array_equal(a.atoms.cell.array, b.atoms.cell.array)
        assert a.energy == b.energy
        assert (a.forces is None) == (b.forces is None)
        if a.forces is not None:
            np.testing.assert_array_equal(a.forces, b.forces)
        assert (a.stress is None) == (b.stress is None)
        if a.stress is not None:
            np.testing.assert_array_equal(a.stress, b.stress)
        assert (a.config_type, a.weights, a.info["structure_id"]) == (
            b.config_type, b.weights, b.info["structure_id"])


def test_training_set_is_a_trajectory_of_ragged_steps(aiida_profile, labelled):
    node = TrainingSetData.from_configurations(labelled).store()
    assert isinstance(node, orm.TrajectoryData)
    assert node.base.attributes.get("symbols") == ["Cu"]
    assert node.base.attributes.get("units")["forces"] == "eV/Angstrom"
    big = next(i for i, c in enumerate(labelled) if c.n_atoms == 31)
    structure = node.get_step_structure(big)
    assert len(structure.sites) == 31
    np.testing.assert_allclose(structure.get_ase().positions, labelled[big].atoms.positions)
    assert node.get_step_data(big)[3] == ["Cu"] * 31
    with pytest.raises(IndexError, match="outside"):
        node.get_atoms(len(labelled))
    with pytest.raises(InputError, match="custom_kinds"):
        node.get_step_structure(0, custom_kinds=["Cu"])


def test_training_set_rejects_bad_input(aiida_profile, labelled):
    with pytest.raises(InputError, match="at least one configuration"):
        TrainingSetData.from_configurations([])
    node = TrainingSetData.from_configurations(labelled)
    node.set_array("energies", np.zeros(3))
    with pytest.raises(ValidationError, match="'energies' has shape"):
        node.store()


def test_model_node_carries_provenance_and_predicts(aiida_profile, tiny_atoms):
    model = PerAtomTestModel(["Cu"], [-3.5], Provenance(solver="omp", seed=11,
                                                        training_data_sha256="ab" * 32))
    node = ModelData.from_model(model).store()
    assert node.filename == "model.json"
    assert node.family == "test_per_atom"
    assert node.base.attributes.get("species") == ["Cu"]
    assert node.provenance["solver"] == "omp" and node.provenance["seed"] == 11
    hits = orm.QueryBuilder().append(
        ModelData, filters={"attributes.provenance.training_data_sha256": "ab" * 32}).all()
    assert [h[0].pk for h in hits] == [node.pk]
    atoms = tiny_atoms[0].copy()
    atoms.calc = orm.load_node(node.pk).get_calculator()
    assert atoms.get_potential_energy() == pytest.approx(-3.5 * len(atoms))


def test_model_node_rejects_a_file_that_is_not_a_model(aiida_profile, tmp_path):
    path = tmp_path / "model.json"
    path.write_text("not json")
    with pytest.raises(InputError, match="not an mlip-plugin model file"):
        ModelData(file=str(path))


def test_json_safe_replaces_non_finite_numbers():
    from mlip_plugin.workflows.aiida.data import json_safe

    doc = {"a": np.float64(1.5), "b": [float("nan"), np.inf, 2], "c": {"d": -np.inf},
           "e": np.int64(3), 4: "x"}
    assert json_safe(doc) == {"a": 1.5, "b": [None, None, 2], "c": {"d": None}, "e": 3,
                              "4": "x"}
    assert type(json_safe(doc)["e"]) is int


def test_set_file_sets_the_attributes_of_the_new_file(aiida_profile, tmp_path):
    """The attributes were set in __init__ only: set_file left them stale or missing."""
    paths = {}
    for name, species, seed in [("cu.json", ["Cu"], 1), ("alcu.json", ["Al", "Cu"], 2)]:
        node = ModelData.from_model(PerAtomTestModel(
            species, [-1.0] * len(species), Provenance(solver="omp", seed=seed)))
        paths[name] = tmp_path / name
        paths[name].write_bytes(node.get_content("rb"))
    node = ModelData(file=str(paths["cu.json"]))
    node.set_file(str(paths["alcu.json"]))
    empty = ModelData()
    assert empty.family is None
    empty.set_file(str(paths["alcu.json"]), filename="model.json")
    for n in (node, empty):
        n.store()
        assert n.family == "test_per_atom"
        assert n.base.attributes.get("species") == ["Al", "Cu"]
        assert n.provenance["seed"] == 2
        assert n.base.attributes.get("cutoff") == n.get_model().cutoff
    assert empty.filename == "model.json"
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(InputError, match="not an mlip-plugin model file"):
        node = ModelData(file=str(paths["cu.json"]))
        node.set_file(str(bad))
    assert node.family is None and "species" not in node.base.attributes.all


def test_trajectory_interface_for_equal_steps_and_a_clear_error_for_ragged_ones(
        aiida_profile, labelled, tiny_atoms):
    """symbols held the species and get_positions() the concatenated atoms, so the xsf
    export raised IndexError."""
    from ase.io import read

    ragged = TrainingSetData.from_configurations(labelled).store()
    assert ragged.species == ["Cu"] and ragged.base.attributes.get("symbols") == ["Cu"]
    for call in (lambda: ragged.symbols, ragged.get_positions,
                 lambda: ragged._exportcontent("xsf")):
        with pytest.raises(InputError, match="same atoms .* in every step.*get_atoms"):
            call()
    big = next(i for i, c in enumerate(labelled) if c.n_atoms == 31)
    one = read(io.StringIO(ragged._exportcontent("xsf", index=big)[0].decode()),
               format="xsf")
    np.testing.assert_allclose(one.positions, labelled[big].atoms.positions, atol=1e-12)
    assert "json" in ragged.get_export_formats()
    ragged._exportcontent("json")
    cells = [a for a in tiny_atoms if len(a) == 4]
    assert len(cells) > 2
    equal = TrainingSetData.from_atoms(cells).store()
    assert equal.symbols == ["Cu"] * 4
    assert equal.get_positions().shape == (len(cells), 4, 3)
    frames = read(io.StringIO(equal._exportcontent("xsf")[0].decode()), format="xsf",
                  index=":")
    assert len(frames) == len(cells)
    for frame, atoms in zip(frames, cells, strict=True):
        np.testing.assert_allclose(frame.positions, atoms.positions, atol=1e-12)
        np.testing.assert_allclose(frame.cell.array, atoms.cell.array, atol=1e-12)
    assert equal.get_step_data(1)[3] == ["Cu"] * 4


def test_training_set_keeps_starting_moments_and_charges(aiida_profile):
    """Optional arrays initial_magmoms / initial_charges: stored only when some structure
    has them, back on get_atoms; a node without them (stored before) loads as before."""
    from ase.build import bulk

    fe = bulk("Fe", "bcc", a=2.87, cubic=True)  # ASE's bulk: 2.3 μB per atom
    fe.set_initial_charges([0.5, -0.5])
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    node = TrainingSetData.from_atoms([fe, cu]).store()
    loaded = orm.load_node(node.pk)
    assert loaded.get_array("initial_magmoms").tolist() == [2.3, 2.3] + [0.0] * 4
    fe_back, cu_back = loaded.get_atoms(0), loaded.get_atoms(1)
    assert fe_back.get_initial_magnetic_moments().tolist() == [2.3, 2.3]
    assert fe_back.get_initial_charges().tolist() == [0.5, -0.5]
    assert not {"initial_magmoms", "initial_charges"} & set(cu_back.arrays)
    plain = TrainingSetData.from_atoms([cu, cu.copy()]).store()  # as every node before
    assert not {"initial_magmoms", "initial_charges"} & set(plain.get_arraynames())
    assert set(orm.load_node(plain.pk).get_atoms(0).arrays) == {"numbers", "positions"}
    broken = TrainingSetData.from_atoms([fe, cu])
    broken.set_array("initial_magmoms", np.zeros(5))
    with pytest.raises(ValidationError, match="'initial_magmoms' has shape"):
        broken.store()
