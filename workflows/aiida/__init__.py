"""AiiDA data types, calculations and work chains of mlip-plugin (extra ``aiida``).

A thin layer over the engine-free steps of :mod:`mlip_plugin.pipeline`: every step is a
calcfunction that calls the pipeline function, so the whole chain — structures, reference
labels, fit, property validation — is recorded with provenance.

Entry points (``verdi plugin list aiida.workflows``):

* data: ``mlip.model`` (:class:`~.data.ModelData`, the model file with its provenance record
  as attributes) and ``mlip.training_set`` (:class:`~.data.TrainingSetData`, ONE
  TrajectoryData node for all structures with energies, forces and stresses);
* calcfunctions (``aiida.calculations``): ``mlip.generate_structures``,
  ``mlip.structure_stage`` (one stage of the structure protocol that runs the reference
  calculator: the lattice constant, each NVT run),
  ``mlip.collect_reference``, ``mlip.split_structures``, ``mlip.split_chunks``,
  ``mlip.merge_reference``, ``mlip.gather_reference``, ``mlip.fit_model``,
  ``mlip.evaluate_model``, ``mlip.reference_property`` (one property of the reference
  calculator, so that those finished are kept when another fails),
  ``mlip.validate_model``;
* work chains (``aiida.workflows``): ``mlip.reference``, ``mlip.fit``, ``mlip.validate`` and
  ``mlip.pipeline``, each with ``get_builder_from_protocol`` (``fast``, ``balanced``,
  ``stringent``), and ``mlip.reference_chunk`` (one chunk of structures, run by
  ``mlip.reference``).

Example::

    from aiida.engine import run
    from mlip_plugin.workflows.aiida.pipeline import PipelineWorkChain

    results = run(PipelineWorkChain.get_builder_from_protocol("Cu", "fcc", "fast"))
    results["model"].get_calculator()     # an ASE calculator

A DFT code plugs in through ``reference.reference_workflow`` (any workflow returning
``total_energy`` and ``forces``) and ``reference.reference_inputs``.  With caching enabled
(``verdi config set caching.default_enabled True`` or
``aiida.manage.caching.enable_caching()``), an identical rerun reuses every finished
calculation, the fit included.  :func:`~.provenance.trace_model` walks back from a model to
its reference structures, reference parameters and fit settings, and lists the validations
run on it (their settings: suite, properties, the crystal of suite ``bulk``).

Your own structures (a compound or alloy, say): ``mlip.reference`` and ``mlip.pipeline``
take them as a list of ``ase.Atoms`` (``PipelineWorkChain.get_builder_from_protocol(
protocol="fast", structures=[...], overrides={"validate": {"settings": {"structure":
crystal}}})``); see the README's section on a compound or alloy.

The modules import AiiDA; nothing else in mlip-plugin does.
"""
