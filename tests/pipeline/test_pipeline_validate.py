"""Comparison rows of the validation step: diagnostic rows keep their absolute error only."""

from __future__ import annotations

import pytest

from mlip_plugin import InputError
from mlip_plugin.pipeline.validate import (
    DIAGNOSTIC_ROWS,
    _mean_abs_percent,
    _reference_table,
    compare_rows,
)


def test_diagnostic_rows_have_no_percent_error():
    model = {"c11": 110.0, "phonon_min_frequency": -1.4e-7, "md_diffusivity": 4.1e-5}
    reference = {"c11": 100.0, "phonon_min_frequency": -5.6e-6, "md_diffusivity": 2.4e-5}
    rows = {r["name"]: r for r in compare_rows(model, reference)}
    assert rows["c11"]["error_percent"] == pytest.approx(10.0)
    for name in ("phonon_min_frequency", "md_diffusivity"):
        assert name in DIAGNOSTIC_ROWS
        assert rows[name]["error_percent"] is None
        assert rows[name]["abs_error"] == pytest.approx(abs(model[name] - reference[name]))
    # the mean % error is that of the measured properties only
    assert _mean_abs_percent(rows.values()) == pytest.approx(10.0)


@pytest.mark.parametrize("content,match", [
    ("{", "is not readable JSON"),
    ("", "is not readable JSON"),
    ('"c11"', "holds a JSON str"),
])
def test_corrupt_reference_table_is_an_input_error(tmp_path, content, match):
    path = tmp_path / "table.json"
    path.write_text(content)
    with pytest.raises(InputError, match=match):
        _reference_table(str(path), "fcc", None)
    with pytest.raises(InputError, match="does not exist"):
        _reference_table(str(tmp_path / "none.json"), "fcc", None)
