"""pyiron jobs of mlip-plugin (extra ``pyiron``).

Importing this module registers the job classes with pyiron, so that
``pr.create.job.MLIPReferenceData``, ``pr.create.job.MLIPFit`` and
``pr.create.job.MLIPValidation`` work in any project::

    from pyiron_base import Project
    import mlip_plugin.workflows.pyiron  # registers the jobs

    pr = Project("cu_emt")
    ref = pr.create.job.MLIPReferenceData("reference")
    ref.input.structure_spec = {"preset": "tiny", "element": "Cu", "lattice": "fcc"}
    ref.run()
    fit = pr.create.job.MLIPFit("fit")
    fit.training_job = ref          # recorded in fit.input and in the job table (parentid)
    fit.run()
    calc = pr.load("fit").get_calculator()   # an ASE calculator, in any later session

Each job stores its inputs and outputs in its HDF5 file and runs through pyiron's usual
machinery (``job.server.run_mode``, queues, ``job.server.executor``).
"""

from __future__ import annotations

try:
    from pyiron_base import JobType
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(
        "mlip_plugin.workflows.pyiron needs pyiron_base; install it with "
        "`pip install mlip-plugin[pyiron]`"
    ) from err

from .arrays import (
    arrays_to_configurations,
    arrays_to_structures,
    configurations_to_arrays,
    structures_to_arrays,
)
from .base import MLIPJob
from .fit_job import MLIPFit
from .reference_job import MLIPReferenceData
from .validation_job import MLIPValidation

JOB_CLASSES = (MLIPReferenceData, MLIPFit, MLIPValidation)

for _cls in JOB_CLASSES:
    JobType.register(_cls, overwrite=True)

__all__ = [
    "MLIPJob",
    "MLIPReferenceData",
    "MLIPFit",
    "MLIPValidation",
    "JOB_CLASSES",
    "structures_to_arrays",
    "arrays_to_structures",
    "configurations_to_arrays",
    "arrays_to_configurations",
]
