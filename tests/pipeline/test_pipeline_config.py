"""The YAML schema of mlip run: defaults, relative paths and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_plugin import InputError
from mlip_plugin.pipeline.config import RunConfig, load_config


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_config(tmp_path):
    cfg = load_config(write(tmp_path, "structures: {element: Cu}\n"))
    assert cfg.structures.preset == "tiny" and cfg.structures.element == "Cu"
    assert cfg.reference.calculator == "ase.calculators.emt.EMT"
    assert cfg.fit.solver == "omp" and cfg.validate.suite == "fcc"


def test_data_paths_relative_to_config(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg = load_config(write(tmp_path / "sub", "data: {train: train.xyz}\nvalidate: null\n"))
    assert cfg.data.train == str(tmp_path / "sub" / "train.xyz")
    assert cfg.validate is None


@pytest.mark.parametrize("text,match", [
    ("structures: {element: Cu}\nfitt: {}\n", r"unknown key 'fitt' in section 'top level'.*"
                                               r"did you mean 'fit'"),
    ("structures: {element: Cu}\nfit: {max_activ: 3}\n", r"unknown key 'max_activ'.*"
                                                          r"'max_active'"),
    ("structures: {element: Cu, supercel: 3}\n", r"unknown key 'supercel' in section "
                                                 r"'structures'"),
    ("structures: {element: Cu}\nfit: {solver: magic}\n", r"fit.solver='magic' is not one of"),
    ("structures: {element: Cu}\nfit: {weights: {energi: 1}}\n",
     r"unknown key 'energi' in section 'fit.weights'"),
    ("fit: {}\n", "needs a 'structures' section"),
    ("data: {test: x.xyz}\n", "needs 'train'"),
    ("structures: {element: Cu}\ndata: {train: x}\n", "either 'structures' or 'data'"),
    ("structures: [1, 2]\n", "section 'structures' must be a mapping"),
    (": : :\n", "not valid YAML"),
])
def test_bad_configs(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        load_config(write(tmp_path, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_round_trip_dict(tmp_path):
    cfg = load_config(write(tmp_path, "structures: {element: Cu, slabs: [[1, 1, 1]]}\n"))
    again = RunConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "data"})
    assert again.structures == cfg.structures
    assert np.array_equal(again.structures.slabs, ((1, 1, 1),))
