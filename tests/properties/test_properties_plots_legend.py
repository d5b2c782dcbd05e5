"""The phonon band plot has one legend entry per band structure."""

from __future__ import annotations

from ase.build import bulk
from ase.calculators.emt import EMT

from mlip_plugin.properties.phonons import PhononSettings, phonons
from mlip_plugin.properties.plots import plot_phonon_bands


def test_phonon_legend_names_model_and_reference(tmp_path):
    result = phonons(EMT(), bulk("Cu", "fcc", a=3.59, cubic=True), PhononSettings.fast())
    fig = plot_phonon_bands(result, result, path=tmp_path / "bands.png")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["reference", "model"]
    assert (tmp_path / "bands.png").is_file()
