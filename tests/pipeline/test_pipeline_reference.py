"""Structure protocols and reference collection with its on-disk cache."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from ase.calculators.emt import EMT
from pipeline_test_calculators import FailAtCallEMT

from mlip_plugin import InputError
from mlip_plugin.errors import MLIPError
from mlip_plugin.pipeline.reference import (
    CalculatorSpec,
    collect_reference_data,
    structure_key,
    write_json_atomic,
)
from mlip_plugin.pipeline.structures import (
    StructureGenerationError,
    StructureSpec,
    generate_structures,
    lattice_constant,
    volumetric_strains,
)

COUNTING = {"calculator": "pipeline_test_calculators.CountingEMT", "parameters": {}}


@pytest.fixture(scope="module")
def tiny_structures():
    return generate_structures(StructureSpec.from_preset("tiny"), EMT())


def test_tiny_protocol_has_every_kind(tiny_structures):
    kinds = {a.info["config_type"] for a in tiny_structures}
    assert kinds == {"ground_state", "volumetric", "elastic", "rattled", "vacancy", "surface",
                     "md", "md_vacancy"}
    ids = [a.info["structure_id"] for a in tiny_structures]
    assert len(ids) == len(set(ids))
    vol = [a.get_volume() / len(a) for a in tiny_structures if a.info["config_type"] ==
           "volumetric"]
    v0 = tiny_structures[0].get_volume() / len(tiny_structures[0])
    assert min(vol) == pytest.approx(0.9 * v0) and max(vol) == pytest.approx(1.1 * v0)
    assert all(len(a) == 31 for a in tiny_structures if a.info["config_type"] == "vacancy")


def test_protocol_is_seeded():
    spec = StructureSpec.from_preset("tiny", md_snapshots=0)
    a, b = generate_structures(spec), generate_structures(spec)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    c = generate_structures(StructureSpec.from_preset("tiny", md_snapshots=0, seed=1))
    assert not all(np.array_equal(x.positions, y.positions) for x, y in zip(a, c))


@pytest.mark.parametrize("n", range(1, 10))
def test_volumetric_strains_leave_out_zero(n):
    strains = volumetric_strains(n, 0.1)
    assert len(strains) == n and np.all(strains != 0.0)
    assert np.all(np.diff(strains) > 0) and strains[0] == pytest.approx(-0.1)
    assert np.all(np.abs(strains) <= 0.1 + 1e-15)
    if n > 1:
        assert strains[-1] == pytest.approx(0.1)


@pytest.mark.parametrize("preset", ["tiny", "demo", "standard"])
def test_protocol_has_no_duplicate_structures(preset):
    """The zero volume strain repeated the ground state (mlip demo labelled one structure
    twice, "55 labelled (1 from cache)" in an empty folder)."""
    spec = StructureSpec.from_preset(preset, md_snapshots=0)
    structures = generate_structures(spec)
    assert sum(a.info["config_type"] == "volumetric" for a in structures) == spec.n_volumetric
    for i, x in enumerate(structures):
        for y in structures[i + 1:]:
            same = (len(x) == len(y) and np.array_equal(x.numbers, y.numbers)
                    and np.allclose(x.cell.array, y.cell.array, atol=1e-8)
                    and np.allclose(x.positions, y.positions, atol=1e-8))
            assert not same, (x.info["structure_id"], y.info["structure_id"])


def test_zero_volumetric_strain_range_is_refused():
    with pytest.raises(InputError, match="max_volumetric_strain=0 with n_volumetric=5"):
        StructureSpec(max_volumetric_strain=0.0, n_volumetric=5)
    assert StructureSpec(max_volumetric_strain=0.0, n_volumetric=0).n_volumetric == 0


def test_lattice_constant_relaxed_with_reference():
    a = lattice_constant("Cu", "fcc", EMT())
    assert a == pytest.approx(3.59, abs=0.01)  # EMT's Cu, not the tabulated 3.61
    assert lattice_constant("Cu", "fcc") == pytest.approx(3.61)


def test_bad_specs():
    with pytest.raises(InputError, match="element='Xx' is not a chemical symbol"):
        StructureSpec(element="Xx")
    with pytest.raises(InputError, match="lattice='hex' is not one of"):
        StructureSpec(lattice="hex")
    with pytest.raises(InputError, match="preset='huge' is not one of"):
        StructureSpec.from_preset("huge")
    with pytest.raises(InputError, match=r"unknown structure settings \['supercel'\]"):
        StructureSpec.from_preset("tiny", supercel=3)


def test_unknown_calculator():
    with pytest.raises(InputError, match="unknown calculator class 'ase.calculators.nope.X'"):
        CalculatorSpec.coerce({"calculator": "ase.calculators.nope.X"}).build()
    with pytest.raises(InputError, match="not a full class path"):
        CalculatorSpec.coerce("EMT").build()
    with pytest.raises(InputError, match="rejected its parameters"):
        CalculatorSpec.coerce({"calculator": "pipeline_test_calculators.StrictEMT",
                               "parameters": {"bogus": 1}}).build()
    with pytest.raises(InputError, match="needs the key 'calculator'"):
        CalculatorSpec.coerce({"calc": "x"})


def test_labels_equal_direct_emt(tiny_structures):
    result = collect_reference_data(tiny_structures[:5])
    for atoms, config in zip(tiny_structures[:5], result.configs):
        ref = atoms.copy()
        ref.calc = EMT()
        assert config.energy == pytest.approx(ref.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(config.stress, ref.get_stress(), atol=1e-12)
        assert config.config_type == atoms.info["config_type"]


def test_cache_resumes_without_recomputing(tiny_structures, tmp_path):
    from pipeline_test_calculators import CountingEMT

    CountingEMT.calls = 0
    first = collect_reference_data(tiny_structures[:6], COUNTING, cache_dir=tmp_path)
    assert first.n_computed == 6 and CountingEMT.calls >= 6
    calls = CountingEMT.calls
    # an "interrupted" run: only part of the cache exists
    for path in sorted(tmp_path.glob("*.json"))[:2]:
        path.unlink()
    again = collect_reference_data(tiny_structures, COUNTING, cache_dir=tmp_path)
    assert again.n_cached == 4 and again.n_computed == len(tiny_structures) - 4
    assert [c.energy for c in again.configs[:6]] == [c.energy for c in first.configs]
    CountingEMT.calls = 0
    third = collect_reference_data(tiny_structures, COUNTING, cache_dir=tmp_path)
    assert third.n_computed == 0 and CountingEMT.calls == 0
    assert calls > 0
    # another calculator spec does not reuse these entries
    other = CalculatorSpec("pipeline_test_calculators.CountingEMT", {"fixed_cutoff": False})
    assert structure_key(tiny_structures[0], other) != structure_key(
        tiny_structures[0], CalculatorSpec.coerce(COUNTING))


def test_failures_are_recorded_and_the_run_goes_on(tiny_structures, tmp_path):
    result = collect_reference_data(
        tiny_structures, "pipeline_test_calculators.FailOnVacancyEMT", cache_dir=tmp_path)
    failed = {f["structure_id"] for f in result.failures}
    expected = {a.info["structure_id"] for a in tiny_structures if len(a) % 4}
    assert failed == expected and len(expected) >= 2
    assert len(result.configs) + len(result.failures) == len(tiny_structures)
    assert all(f["error_type"] == "RuntimeError" and "simulated SCF failure" in f["message"]
               for f in result.failures)
    summary = result.summary()
    assert summary["n_failed"] == len(failed) and summary["failure_reasons"] == {
        "RuntimeError": len(failed)}
    assert len(list(tmp_path.glob("*.json"))) == len(result.configs)  # failures not cached


def test_each_failure_gets_its_own_reason():
    """Two Si structures for EMT: both fail with EMT's own message.  The calculator that
    failed on the first was reused before, and the second failure read "AttributeError:
    'EMT' object has no attribute 'nl'", which names no cause."""
    from ase.build import bulk

    si = [bulk("Si", "diamond", a=5.43), bulk("Si", "diamond", a=5.5), bulk("Cu", "fcc")]
    result = collect_reference_data(si, "ase.calculators.emt.EMT")
    assert [(f["index"], f["error_type"], f["message"]) for f in result.failures] == [
        (0, "NotImplementedError", "No EMT-potential for Si"),
        (1, "NotImplementedError", "No EMT-potential for Si")]
    assert len(result.configs) == 1


def test_a_nan_stress_is_a_failure_and_is_not_cached(tmp_path, caplog):
    """Only energy and forces were checked: a NaN stress was cached, and every rerun failed
    in the fit ("b contains NaN") without naming a structure; a cache file holding one is
    now unusable (recomputed), like one with a NaN force."""
    structures = generate_structures(StructureSpec.from_preset("tiny", md_snapshots=0))[:3]
    cache = tmp_path / "cache"
    bad = collect_reference_data(structures, "pipeline_test_calculators.NaNStressEMT",
                                 cache_dir=cache)
    assert bad.configs == [] and [f["message"] for f in bad.failures] == [
        "the calculator returned NaN or inf in its stress"] * 3
    assert list(cache.glob("*.json")) == []  # failures are not cached
    good = collect_reference_data(structures, cache_dir=cache)
    path = cache / f"{structure_key(structures[0], CalculatorSpec())}.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "stress": [float("nan")] * 6}))
    with caplog.at_level("WARNING", logger="mlip_plugin.pipeline.reference"):
        again = collect_reference_data(structures, cache_dir=cache)
    assert path.name in caplog.text and "non-finite stress" in caplog.text
    assert (again.n_cached, again.n_computed) == (2, 1)
    np.testing.assert_array_equal(again.configs[0].stress, good.configs[0].stress)


def test_unusable_cache_entries_are_recomputed(tmp_path, caplog):
    """An empty, truncated or incomplete cache file is a cache miss, not a dead end."""
    structures = generate_structures(StructureSpec.from_preset("tiny", md_snapshots=0))[:5]
    cache = tmp_path / "cache"
    first = collect_reference_data(structures, cache_dir=cache)
    files = [cache / f"{structure_key(a, CalculatorSpec())}.json" for a in structures]
    good = [f.read_text() for f in files]
    files[0].write_text("")
    files[1].write_text(good[1][:40])
    files[2].write_text(json.dumps({"energy": 1.0}))  # no forces
    files[3].write_text("[1, 2]")
    with caplog.at_level("WARNING", logger="mlip_plugin.pipeline.reference"):
        again = collect_reference_data(structures, cache_dir=cache)
    assert (again.n_cached, again.n_computed) == (1, 4)
    for f in files[:4]:
        assert f.name in caplog.text
    assert [f.read_text() for f in files] == good  # overwritten with the same labels
    assert all(np.array_equal(a.forces, b.forces) for a, b in zip(first.configs, again.configs))
    assert collect_reference_data(structures, cache_dir=cache).n_cached == 5


def test_cache_files_are_written_atomically(tmp_path):
    path = tmp_path / "entry.json"
    write_json_atomic(path, {"energy": 1.0})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"energy": object()})  # fails half-way through
    assert json.loads(path.read_text()) == {"energy": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_calculator_failure_in_structure_generation_is_named_and_resumable(tmp_path):
    """A failing NVT run raises StructureGenerationError naming the stage and the original
    error; the finished stages are kept and a rerun computes only what is missing, with
    the same structures as an uninterrupted run."""
    spec = StructureSpec.from_preset("tiny")
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 0
    clean = generate_structures(spec, FailAtCallEMT())
    n_clean = FailAtCallEMT.calls
    FailAtCallEMT.calls = 0
    generate_structures(replace(spec, md_with_vacancy=False), FailAtCallEMT())
    n_before_vacancy_md = FailAtCallEMT.calls  # lattice constant + the first NVT run

    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, n_before_vacancy_md + 5
    with pytest.raises(StructureGenerationError, match=r"stage 'md_vacancy-600K'.*"
                       r"RuntimeError: simulated SCF failure.*rerun resumes") as exc:
        generate_structures(spec, FailAtCallEMT(), cache_dir=tmp_path)
    assert isinstance(exc.value, MLIPError) and exc.value.stage == "md_vacancy-600K"
    assert {p.name for p in tmp_path.iterdir()} == {"lattice_constant.json", "md-600K.json"}

    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 0
    resumed = generate_structures(spec, FailAtCallEMT(), cache_dir=tmp_path)
    assert FailAtCallEMT.calls == n_clean - n_before_vacancy_md
    assert [a.info for a in resumed] == [a.info for a in clean]
    assert all(np.array_equal(a.positions, b.positions) and np.array_equal(a.cell, b.cell)
               for a, b in zip(resumed, clean))
    FailAtCallEMT.calls = 0
    generate_structures(spec, FailAtCallEMT(), cache_dir=tmp_path)
    assert FailAtCallEMT.calls == 0  # every stage from the cache


def test_stages_one_by_one_give_the_structures_of_one_run():
    """What an engine does to keep each finished stage (AiiDA: one calcfunction each): the
    calculator stages computed one at a time, each from the earlier ones' results passed
    through JSON, then the structures from all results, with no calculation; the same
    structures as one uninterrupted run.  A result that does not fit is computed again."""
    from mlip_plugin.pipeline.structures import calculator_stages, structure_stage

    spec = StructureSpec.from_preset("tiny")
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 0
    clean = generate_structures(spec, FailAtCallEMT())
    n_clean = FailAtCallEMT.calls
    names = calculator_stages(spec)
    assert names == ["lattice_constant", "md-600K", "md_vacancy-600K"]
    FailAtCallEMT.calls, docs = 0, {}
    for name in names:
        docs[name] = json.loads(json.dumps(structure_stage(spec, FailAtCallEMT(), name, docs)))
    assert FailAtCallEMT.calls == n_clean
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 1  # any calculation now fails
    given = generate_structures(spec, FailAtCallEMT(), stage_documents=docs)
    assert FailAtCallEMT.calls == 0
    assert [a.info for a in given] == [a.info for a in clean]
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(given, clean))
    with pytest.raises(StructureGenerationError, match="stage 'md_vacancy-600K'"):
        generate_structures(spec, FailAtCallEMT(), stage_documents={
            **docs, "md_vacancy-600K": {"snapshots": []}})  # not the stage's result
    with pytest.raises(InputError, match="stage='md-900K' is not a calculator stage"):
        structure_stage(spec, FailAtCallEMT(), "md-900K")
    assert calculator_stages(replace(spec, a=3.6, md_snapshots=0)) == []


def test_lattice_constant_failure_and_unusable_stage_file(tmp_path):
    spec = StructureSpec.from_preset("tiny", md_snapshots=0)
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 1
    with pytest.raises(StructureGenerationError, match="stage 'lattice_constant'"):
        generate_structures(spec, FailAtCallEMT(), cache_dir=tmp_path)
    (tmp_path / "lattice_constant.json").write_text("")  # as left by a crash
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 0
    structures = generate_structures(spec, FailAtCallEMT(), cache_dir=tmp_path)
    assert FailAtCallEMT.calls > 0
    a = json.loads((tmp_path / "lattice_constant.json").read_text())["a"]
    assert structures[0].cell[0, 0] == pytest.approx(a) == pytest.approx(3.59, abs=0.01)


@pytest.mark.parametrize("spec,match", [
    ({"calculator": "ase.calculators.emt.EMT", "parameters": [1]},
     r"reference.parameters=\[1\] \(list\) is not a mapping"),
    ({"calculator": 5}, "reference.calculator=5 is not a class path"),
])
def test_bad_calculator_spec_types(spec, match):
    with pytest.raises(InputError, match=match):
        CalculatorSpec.coerce(spec)


# -- starting magnetic moments of the protocol ---------------------------------------------

@pytest.mark.parametrize("element,lattice,magmoms,moment", [
    ("Fe", "bcc", "auto", 2.3), ("Co", "fcc", "auto", 1.2), ("Ni", "fcc", "auto", 0.6),
    ("Fe", "bcc", "none", 0.0), ("Fe", "bcc", {"Fe": 3.0, "Ni": 1.0}, 3.0),
    ("Fe", "bcc", {"Ni": 1.0}, 0.0), ("Cu", "fcc", "auto", 0.0), ("Cr", "bcc", "auto", 0.0),
])
def test_protocol_starting_moments(element, lattice, magmoms, moment):
    spec = StructureSpec.from_preset("tiny", element=element, lattice=lattice,
                                     magmoms=magmoms)
    assert spec.starting_magmom() == moment
    structures = generate_structures(spec)  # every kind but the NVT snapshots
    for atoms in structures:
        if moment:
            assert atoms.get_initial_magnetic_moments().tolist() == [moment] * len(atoms)
        else:  # no array at all: ASE's bulk puts its own on Fe, Co, Ni
            assert "initial_magmoms" not in atoms.arrays


def test_protocol_moments_reach_the_calculator_and_the_nvt_snapshots(tmp_path):
    """Ni (EMT has Ni): the lattice constant relaxation, the NVT runs and their snapshots
    start from Ni's moment; with magmoms: none the calculator sees none."""
    from pipeline_test_calculators import StartingMomentsEMT

    for magmoms, moment in (("auto", 0.6), ("none", 0.0)):
        log = tmp_path / f"{magmoms}.jsonl"
        spec = StructureSpec.from_preset("tiny", element="Ni", magmoms=magmoms)
        structures = generate_structures(spec, StartingMomentsEMT(log=str(log)))
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        assert len(calls) > 7  # the equation of state and the NVT steps
        assert {m for c in calls for m in c["magmoms"]} == {moment}
        md = [a for a in structures if a.info["config_type"].startswith("md")]
        assert md and all(a.get_initial_magnetic_moments().tolist() == [moment] * len(a)
                          for a in md)


@pytest.mark.parametrize("magmoms,match", [
    ("yes", r"magmoms='yes' is not allowed"), (3.0, r"magmoms=3.0 is not allowed"),
    ({"Xx": 1.0}, r"'Xx' is not a chemical symbol"),
    ({"Fe": "big"}, r"Fe='big' is not a finite number"),
    ({"Fe": float("nan")}, r"Fe=nan is not a finite number"),
])
def test_bad_magmoms_settings(magmoms, match):
    with pytest.raises(InputError, match=match):
        StructureSpec.from_preset("tiny", element="Fe", lattice="bcc", magmoms=magmoms)
