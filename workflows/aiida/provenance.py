"""Walk back from a model node to everything it was made from, with QueryBuilder queries.

:func:`trace_model` answers "which structures, with which reference method and parameters
and fit settings, produced this model, and on which settings (a bulk crystal, say) was it
validated?"; :func:`format_trace` prints the answer as a short chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.common.links import LinkType
from ase.symbols import Symbols

from .data import ModelData, TrainingSetData

__all__ = ["ModelTrace", "trace_model", "format_trace", "ancestors"]


def ancestors(node: orm.Node, cls=orm.Node, filters: dict | None = None) -> list:
    """All ancestors of ``node`` of type ``cls`` (one query over the provenance graph)."""
    qb = orm.QueryBuilder()
    qb.append(orm.Node, filters={"id": node.pk}, tag="start")
    qb.append(cls, with_descendants="start", filters=filters or {}, project="*")
    return sorted({row[0].pk: row[0] for row in qb.all()}.values(), key=lambda n: n.pk)


def _inputs_of(calcs: list, label: str, cls=orm.Data) -> list:
    """The input nodes linked with ``label`` into any of ``calcs``."""
    if not calcs:
        return []
    qb = orm.QueryBuilder()
    qb.append(orm.ProcessNode, filters={"id": {"in": [c.pk for c in calcs]}}, tag="calc")
    qb.append(cls, with_outgoing="calc", edge_filters={"label": label}, project="*")
    return sorted({row[0].pk: row[0] for row in qb.all()}.values(), key=lambda n: n.pk)


@dataclass
class ModelTrace:
    """What a model was made from.

    Attributes
    ----------
    model : ModelData
    fit_calculation : orm.CalcFunctionNode or None
        The ``fit_model`` calcfunction that created the model; None for a model stored
        from a file (fitted by ``mlip``, pyiron or Python), which has no upstream graph:
        its own provenance record (``model.provenance``) is all there is.
    training_sets : list of TrainingSetData
        Labelled training (and validation) sets the fit read.
    reference_calculations : list of orm.ProcessNode
        ``collect_reference`` calcfunctions (ASE path) or the reference workflows (one per
        labelled structure) whose outputs ``gather_reference`` consumed as the labels.
    failed_reference_calculations : list of orm.ProcessNode
        The reference workflows of the same runs whose structures failed (workflow path).
    structures : list of ase.Atoms
        Every structure that was sent to the reference method (failed ones included).
    reference_parameters : list of dict
        The ASE calculator specs, or the pass-through inputs of the reference workflows.
    fit_settings : dict
        The FitSettings the fit calcfunction was given (its ``settings`` input).
    validations : list of orm.CalcFunctionNode
        The ``validate_model`` calcfunctions run on the model (downstream of it): each
        one's ``inputs.settings`` (suite, properties, the ``structure`` of suite bulk) and
        ``outputs.result`` (the property table).
    """

    model: ModelData
    fit_calculation: orm.CalcFunctionNode | None
    training_sets: list = field(default_factory=list)
    reference_calculations: list = field(default_factory=list)
    structures: list = field(default_factory=list)
    reference_parameters: list = field(default_factory=list)
    failed_reference_calculations: list = field(default_factory=list)
    fit_settings: dict = field(default_factory=dict)
    validations: list = field(default_factory=list)


def _reference_workflows(gathers: list) -> tuple[list, list]:
    """The reference workflows whose outputs ``gathers`` (``gather_reference`` nodes)
    consumed as labels, and those of the same runs that failed (``failures`` input).

    A label may also be returned by workflows nested in the reference workflow; the one
    launched by the work chain that called ``gather_reference`` is the reference workflow.
    """
    if not gathers:
        return [], []
    qb = orm.QueryBuilder()
    qb.append(orm.CalcFunctionNode, filters={"id": {"in": [g.pk for g in gathers]}},
              tag="gather")
    qb.append(orm.Data, with_outgoing="gather", tag="label",
              edge_filters={"label": {"like": "energy_%"}})
    qb.append(orm.WorkflowNode, with_outgoing="label",
              edge_filters={"type": LinkType.RETURN.value}, project="*")
    returned = {row[0].pk: row[0] for row in qb.all()}
    callers = {g.caller.pk for g in gathers if g.caller is not None}

    def launched(wf) -> bool:
        if callers:  # launched by the work chain that gathered the labels
            return wf.caller is not None and wf.caller.pk in callers
        return wf.caller is None or wf.caller.pk not in returned  # the outermost

    used = [wf for wf in returned.values() if launched(wf)]
    failed = {}
    for gather in gathers:
        for record in gather.inputs.failures.get_list():
            try:  # records of older versions have no process_pk; a node may be deleted
                failed[record["process_pk"]] = orm.load_node(record["process_pk"])
            except (KeyError, NotExistent):
                continue
    return (sorted(used, key=lambda n: n.pk),
            sorted(failed.values(), key=lambda n: n.pk))


def _workflow_parameters(workflow: orm.WorkflowNode) -> dict:
    """The inputs of a reference workflow except ``structure`` (Dicts as dicts)."""
    return {link.link_label: (link.node.get_dict() if isinstance(link.node, orm.Dict)
                              else getattr(link.node, "value", link.node.uuid))
            for link in workflow.base.links.get_incoming(link_type=LinkType.INPUT_WORK).all()
            if link.link_label != "structure"}


def trace_model(model: ModelData) -> ModelTrace:
    """Query the provenance graph upstream of ``model``.

    Works for both reference paths: the in-process ASE calculator (structures are the steps
    of the ``structures`` input of ``collect_reference``) and ``reference_workflow`` (the
    ``structure`` input of each reference workflow).
    """
    trace = ModelTrace(model=model, fit_calculation=model.creator)
    trace.validations = sorted(
        (link.node for link in model.base.links.get_outgoing(
            node_class=orm.CalcFunctionNode, link_type=LinkType.INPUT_CALC).all()
         if link.node.process_label == "validate_model"), key=lambda n: n.pk)
    if model.creator is None:  # stored from a file: nothing upstream
        return trace
    if "settings" in model.creator.inputs:
        trace.fit_settings = model.creator.inputs.settings.get_dict()
    trace.training_sets = [n for n in _inputs_of([model.creator], "training_set",
                                                 TrainingSetData)]
    trace.training_sets += _inputs_of([model.creator], "validation", TrainingSetData)
    collects = ancestors(model, orm.CalcFunctionNode,
                         {"attributes.process_label": "collect_reference"})
    if collects:
        trace.reference_calculations = collects
        chunks = sorted(_inputs_of(collects, "structures", TrainingSetData),
                        key=lambda n: n.base.attributes.get("offset", 0))
        for node in chunks:  # one node, or the chunks of `chunk_size` in their order
            trace.structures += [node.get_atoms(i) for i in range(node.numsteps)]
        trace.reference_parameters = [n.get_dict() for n in _inputs_of(collects, "calculator")]
        return trace
    gathers = ancestors(model, orm.CalcFunctionNode,
                        {"attributes.process_label": "gather_reference"})
    split = _inputs_of(gathers, "structures", TrainingSetData)
    for node in split:  # failed structures too: they are steps of the split input
        trace.structures += [node.get_atoms(i) for i in range(node.numsteps)]
    trace.reference_calculations, trace.failed_reference_calculations = \
        _reference_workflows(gathers)
    trace.reference_parameters = [_workflow_parameters(wf)
                                  for wf in trace.reference_calculations]
    return trace


def _upstream_lines(t: ModelTrace) -> list[str]:
    """The training sets, reference calculations and structures of a trace, as lines."""
    lines = [f"  <- training set <{ts.pk}>: {ts.numsteps} structures, {ts.numsites} atoms"
             for ts in t.training_sets]
    kinds = sorted({r.process_label for r in t.reference_calculations})
    failed = (f" (+{len(t.failed_reference_calculations)} failed)"
              if t.failed_reference_calculations else "")
    lines.append(f"  <- {len(t.reference_calculations)} reference calculation(s) {kinds}"
                 f"{failed}")
    for params in {repr(p): p for p in t.reference_parameters}.values():
        lines.append(f"     reference parameters: {params}")
    types = sorted({a.info.get("config_type", "?") for a in t.structures})
    lines.append(f"  <- {len(t.structures)} reference structures ({', '.join(types)})")
    return lines


def format_trace(model: ModelData) -> str:
    """The provenance chain of ``model`` as readable lines (for reports and examples)."""
    t = trace_model(model)
    prov = model.provenance
    lines = [f"model <{model.pk}> {model.family} ({model.filename}), solver "
             f"{prov.get('solver', '?')}, training data sha256 "
             f"{str(prov.get('training_data_sha256', ''))[:12]}...",
             f"  <- {t.fit_calculation.process_label} <{t.fit_calculation.pk}>"
             if t.fit_calculation is not None else
             "  <- no calculation: stored from a file (fitted outside AiiDA); its own "
             f"record: {prov.get('n_train', '?')} training configurations, created "
             f"{prov.get('created', '?')}"]
    if t.fit_calculation is not None:
        lines += _upstream_lines(t)
    if t.fit_settings:
        lines.insert(2, f"     fit settings: {t.fit_settings}")
    for node in t.validations:
        settings = node.inputs.settings.get_dict()
        crystal = settings.get("structure")
        suite = node.outputs.result.get("suite") if "result" in node.outputs else None
        on = f" on {Symbols.fromsymbols(crystal['symbols'])}" if crystal else ""
        lines.append(f"  -> {node.process_label} <{node.pk}> ({node.process_state.value}): "
                     f"suite {suite or settings.get('suite') or '?'}{on}, properties "
                     f"{settings.get('properties') or 'all'}")
    return "\n".join(lines)
