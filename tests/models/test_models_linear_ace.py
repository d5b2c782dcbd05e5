"""LinearACEModel built from a solver's support: coefficients, committee, file round trip."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from mlip_plugin.ace import ACEBasis
from mlip_plugin.models.linear_ace import LinearACEModel

E0 = {"Al": -0.3, "Ni": -0.7}


@pytest.fixture(scope="module")
def alni_basis() -> ACEBasis:
    return ACEBasis(["Al", "Ni"], correlation_order=2, total_degree=5, r_cut=4.5,
                    r0={"Al-Al": 2.8, "Al-Ni": 2.6, "Ni-Ni": 2.5})


@pytest.fixture(scope="module")
def alni():
    atoms = bulk("Al", "fcc", a=4.0).repeat((2, 2, 1))
    atoms.symbols[[0, 3]] = "Ni"
    atoms.rattle(0.05, seed=4)
    return atoms


def test_from_support_takes_committee_columns_in_the_order_of_values(alni_basis, alni):
    """The fit passes a committee of shape (members, len(support)), aligned with ``values``;
    from_support indexed it with column numbers of the full basis (IndexError, or wrong
    columns when the support is not the whole basis)."""
    rng = np.random.default_rng(7)
    support = np.array([20, 3, 11, 40])
    values = rng.normal(size=4)
    committee = values + 0.1 * rng.normal(size=(3, 4))
    model = LinearACEModel.from_support(alni_basis, support, values, E0, committee=committee)
    for member, row in zip(committee, model.committee):
        alone = LinearACEModel.from_support(alni_basis, support, member, E0)
        assert np.array_equal(row, alone.coef)
    energies = [LinearACEModel.from_support(alni_basis, support, m, E0).predict(alni).energy
                for m in committee]
    assert model.predict(alni).extras["energy_std"] == pytest.approx(np.std(energies),
                                                                     rel=1e-10)


def test_energy_is_e0_of_each_atom_plus_the_basis_sum(alni_basis, alni):
    """E = Σ_i E0[Z_i] + Σ_k c_k B_k, per site too, with two species of different E0 and
    counts (2 Ni, 2 Al): the basis part from evaluate_basis (the design-matrix route), not
    the model's adjoint evaluation."""
    from mlip_plugin.ace import evaluate_basis

    coef = np.random.default_rng(11).normal(size=alni_basis.size)
    model = LinearACEModel(alni_basis, coef, E0, core=False)
    vals = evaluate_basis(alni_basis, [alni])
    e0_sites = np.array([E0[s] for s in alni.get_chemical_symbols()])
    assert sorted(set(e0_sites)) == sorted(E0.values())
    pred = model.predict(alni)
    assert pred.energy == pytest.approx(e0_sites.sum() + vals.energy[0] @ coef, rel=1e-12)
    np.testing.assert_allclose(pred.energies, e0_sites + vals.site @ coef, rtol=1e-11,
                               atol=1e-11)


def _edited(model, tmp_path, edit):
    """Save ``model``, apply ``edit`` to its JSON document, store a matching checksum."""
    import json

    from mlip_plugin.models.fileformat import _checksum

    doc = json.loads(model.save(tmp_path / "m.json").read_text())
    edit(doc)
    doc["checksum"] = _checksum(doc)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["params"]["basis"].pop("w_L"), "lacks the entry 'w_L'"),
    (lambda d: d["params"].pop("e0"), "lacks the entry 'e0'"),
    (lambda d: d["arrays"].pop("coef"), "lacks the entry 'coef'"),
    (lambda d: d["params"].update(basis=[]), "inconsistent linear_ace model"),
])
def test_hand_edited_model_file_is_a_named_error(alni_basis, tmp_path, edit, match):
    """A file edited by hand (with a recomputed checksum) that lacks an entry says so (it
    printed only the bare key), and a list where a mapping belongs is a ModelFormatError
    (it was a raw AttributeError)."""
    from mlip_plugin.errors import ModelFormatError
    from mlip_plugin.models import load_model

    model = LinearACEModel(alni_basis, np.zeros(alni_basis.size), E0)
    with pytest.raises(ModelFormatError, match=match):
        load_model(_edited(model, tmp_path, edit))


def test_round_trip_is_bit_identical_with_committee(alni_basis, alni, tmp_path):
    from mlip_plugin.models import load_model

    rng = np.random.default_rng(3)
    support = rng.choice(alni_basis.size, 25, replace=False)
    model = LinearACEModel.from_support(alni_basis, support, rng.normal(size=25), E0,
                                        committee=rng.normal(size=(4, 25)))
    back = load_model(model.save(tmp_path / "m.json"))
    a, b = model.predict(alni), back.predict(alni)
    assert a.energy == b.energy
    for key in ("energies", "forces", "stress"):
        assert np.array_equal(getattr(a, key), getattr(b, key))
    assert a.extras["energy_std"] == b.extras["energy_std"]
    assert back.core == model.core
