"""ASE calculators for fitted mlip-plugin models (installed as ``mlip_plugin.calculators``)."""

from __future__ import annotations

__all__: list[str] = []
