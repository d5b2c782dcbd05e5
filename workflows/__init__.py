"""Workflow-engine adapters (installed as ``mlip_plugin.workflows``).

``mlip_plugin.workflows.aiida`` and ``mlip_plugin.workflows.pyiron`` import their engines
lazily; importing this package needs neither AiiDA nor pyiron.
"""

from __future__ import annotations

__all__: list[str] = []
