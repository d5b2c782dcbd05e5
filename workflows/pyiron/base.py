"""What the mlip-plugin pyiron jobs share: running a step with its outcome recorded in the
job's HDF5 and status, links between jobs, settings dataclasses stored as plain dicts, and
model files stored as text.

Status of a job after ``run()``:

* ``finished``: the step ran and every item succeeded;
* ``warning``: the step ran, but some items failed (e.g. reference structures whose
  calculation raised); ``output/failures`` lists them and ``output/status_message`` says
  how many.  ``run()`` of such a job loads it with a warning (as pyiron does for a
  finished job); ``run(repair=True)`` runs it again;
* ``aborted``: the step failed; ``output/error`` holds the error type and message and
  ``run()`` re-raises the error.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import numpy as np
from pyiron_base import PythonTemplateJob
from pyiron_base.jobs.job.base import JobCore
from pyiron_base.jobs.job.extension.jobstatus import (
    JobStatus,
    job_status_finished_lst,
    job_status_successful_lst,
)

from mlip_plugin import __version__
from mlip_plugin.errors import InputError
from mlip_plugin.models import Model, load_model
from mlip_plugin.pipeline.reference import CalculatorSpec

__all__ = ["MLIPJob", "settings_to_dict", "settings_from_dict", "settings_property",
           "link_property", "model_to_text", "model_from_text"]

log = logging.getLogger(__name__)

MODEL_FILE = "model.json"


class MLIPJob(PythonTemplateJob):
    """Base class of the mlip-plugin jobs (not run directly).

    Subclasses implement :meth:`_run_step`, which fills ``self.output`` and returns the
    final status (``"finished"`` or ``"warning"``) with a one-line message.  A subclass
    whose data come from another job names that link in ``_parent_link``; the job it links
    is recorded as the job's ``parent_id`` (job table ``parentid``) when the job is saved
    and when it runs, never when the link is set: like any input, a changed link changes
    nothing stored until the job runs again.  A job derived with ``copy_template``,
    ``copy_to(..., input_only=True)`` or ``restart`` gets the parent of its own input.
    """

    #: The ``input`` key of the link that is also this job's parent (None: no parent).
    _parent_link: str | None = None

    def _run_step(self) -> tuple[str, str]:
        raise NotImplementedError(f"{type(self).__name__} does not define its step")

    def run_static(self) -> None:
        """Run the step; record its outcome in ``output`` and the job status.

        The output of an earlier run (a repaired or re-run job) is cleared first, so that
        no error or result of that run is left beside the new ones."""
        self.status.running = True
        self._record_parent()
        self.output.clear()
        self.output.mlip_plugin_version = __version__
        try:
            status, message = self._run_step()
        except Exception as err:
            self.output.error = {"type": type(err).__name__, "message": str(err)}
            self._finish("aborted", f"failed: {type(err).__name__}: {err}")
            log.error("%s %r failed: %s: %s", type(self).__name__, self.job_name,
                      type(err).__name__, err)
            raise
        self._finish(status, message)
        log.info("%s %r %s: %s", type(self).__name__, self.job_name, status, message)

    def run(self, delete_existing_job: bool = False, repair: bool = False, debug: bool = False,
            run_mode: str | None = None, run_again: bool = False):
        """Run the job (pyiron's ``run``), except that a job whose last run ended with
        status ``warning`` (some items failed) is loaded instead of silently left as it is.

        pyiron loads a ``finished`` job instead of running it, with a warning, but does
        nothing at all for a ``warning`` job: edits of its input stayed in memory, unrun and
        unsaved, beside the output of the older input.  Here such a job is read back from
        its HDF5 file (its input is the one its output was made with) and a warning says
        how to run it again: ``job.run(repair=True)`` (finished items are taken from the
        job's cache) or ``job.run(delete_existing_job=True)`` (from scratch).
        """
        if (self.status.string == "warning" and self.job_id is not None
                and not (delete_existing_job or run_again or repair)):
            log.warning(
                "%s %r has status 'warning' (%s); it is loaded, not run again, and edits of "
                "its input are discarded. To run it again, e.g. after fixing its input, call "
                "job.run(repair=True) (finished items are not recomputed) or "
                "job.run(delete_existing_job=True) (from scratch)",
                type(self).__name__, self.job_name, self.status_message)
            self.from_hdf()
            return None
        return super().run(delete_existing_job=delete_existing_job, repair=repair, debug=debug,
                           run_mode=run_mode, run_again=run_again)

    def save(self):
        """Save the job (HDF5 file and job table entry) with the ``parent_id`` of its input's
        ``_parent_link`` (replacing the one ``restart`` gives: the restarted job)."""
        if self._parent_link is not None:
            self._parent_id = self._linked_parent_id()  # no job table entry yet
        return super().save()

    def _linked_parent_id(self) -> int | None:
        link = self._get_link(self._parent_link) if self._parent_link else None
        return None if link is None else int(link["job_id"])

    def _record_parent(self) -> None:
        """Write the job of the input's ``_parent_link`` as ``parent_id`` (job table): the
        job run is the one recorded, whatever was set since it was saved."""
        if self._parent_link is not None:
            self.parent_id = self._linked_parent_id()

    def _follow_parent(self, key: str) -> None:
        """An unsaved job's ``parent_id`` follows its parent link at once (nothing of it is
        stored yet); a saved job's is written when it runs (:meth:`_record_parent`)."""
        if key == self._parent_link and self.job_id is None:
            self._parent_id = self._linked_parent_id()

    def _finish(self, status: str, message: str) -> None:
        """Write the HDF5 file completely, then the final status to the job table: a
        process waiting on the table (``pr.wait_for_job``, queues) then reads a finished
        file."""
        self.output.status_message = message
        self.to_hdf()
        self.project_hdf5["status"] = status
        setattr(self.status, status, True)

    def refresh_job_status(self) -> None:
        """Read the status from the job table.

        pyiron's version marks a job run through ``job.server.executor`` as ``finished``
        once its future is done, even when the job itself recorded ``warning`` or
        ``aborted``; a final status already in the job table is kept here.
        """
        if self.job_id:
            db_status = self.project.db.get_job_status(self.job_id)
            if db_status in job_status_finished_lst:
                self._status = JobStatus(initial_status=db_status, db=self.project.db,
                                         job_id=self.job_id)
                return
        super().refresh_job_status()

    @property
    def status_message(self) -> str:
        """One line on what happened in the last run ('' before it ran)."""
        return str(self.output.get("status_message", ""))

    # -- links to other jobs ---------------------------------------------------------
    def _set_link(self, key: str, job, expected: type) -> None:
        """Record ``job`` (a job object, a loaded or inspected job, a job id, or a job name
        in this project) under ``input[key]``; None removes the link."""
        if job is None:
            self._drop(key)
            return
        job_id = self._job_id_of(job, key)
        linked = self.project.load(job_id)
        if linked is None or not isinstance(linked, expected):
            kind = "no job" if linked is None else f"a {type(linked).__name__}"
            raise InputError(f"{key}={_describe(job)} is {kind}; give a {expected.__name__} "
                             "job (the job object, its id or its name)")
        self.input[key] = {"job_id": int(job_id), "job_name": linked.job_name,
                           "project": linked.project.path, "job_type": type(linked).__name__}
        self._follow_parent(key)

    def _job_id_of(self, job, key: str) -> int:
        if isinstance(job, JobCore):  # a job object, or pr.inspect()'s JobPath
            if job.job_id is None:
                raise InputError(f"{key}: job {job.job_name!r} has no job id yet; run (or "
                                 "save) it before linking it")
            return int(job.job_id)
        if isinstance(job, str):
            job_id = self.project.get_job_id(job)
            if job_id is None:
                raise InputError(f"{key}={job!r}: no job of that name in project "
                                 f"{self.project.path!r}")
            return int(job_id)
        if isinstance(job, int) and not isinstance(job, bool):
            if not self.project.db.get_items_dict({"id": job}):
                raise InputError(f"{key}={job}: no job with that id in the job table")
            return job
        raise InputError(f"{key}={_describe(job)} cannot be linked; give a job object, a job "
                         "id (int), a job name (str), or None to remove the link")

    def _get_link(self, key: str) -> dict | None:
        link = self.input.get(key)
        return None if link is None else dict(link)

    def _load_link(self, key: str, expected: type):
        """The linked job, checked to be of type ``expected`` and successfully run."""
        link = self._get_link(key)
        if link is None:
            return None
        rows = self.project.db.get_items_dict({"id": int(link["job_id"])})
        if not rows or rows[0]["job"] != link["job_name"]:  # SQLite reuses deleted ids
            raise InputError(f"{key}: job {link['job_name']!r} (id {link['job_id']}) no longer "
                             "exists; link another job")
        job = self.project.load(int(link["job_id"]))
        if not isinstance(job, expected):
            raise InputError(f"{key}: job {link['job_name']!r} is a {type(job).__name__}, "
                             f"not a {expected.__name__}")
        if job.status.string not in job_status_successful_lst:
            raise InputError(f"{key}: job {job.job_name!r} has status {job.status.string!r}; "
                             f"it must be one of {job_status_successful_lst} (run it first)")
        return job

    def _drop(self, key: str) -> None:
        """Remove ``input[key]`` (in memory: a saved job's job table keeps its parent until
        the job runs again)."""
        if key in self.input:
            del self.input[key]
        self._follow_parent(key)


def _describe(job) -> str:
    """``job`` for a message: name and id of a pyiron job, else its repr (shortened)."""
    if isinstance(job, JobCore):
        return f"job {job.job_name!r} (id {job.job_id})"
    text = repr(job)
    return text if len(text) <= 80 else f"{text[:77]}..."


def link_property(key: str, expected: type, *, replaces: str | None = None,
                  doc: str = "") -> property:
    """A job property that links another job (see :meth:`MLIPJob._set_link`); setting it
    to a job removes ``input[replaces]`` (data given directly instead of the link), setting
    it to None removes the link.  Which link is the job's parent is the class's
    ``_parent_link`` (no ``parent`` argument any more; ``replaces`` and ``doc`` are
    keyword-only, so an old positional call fails loudly)."""

    def getter(self) -> dict | None:
        return self._get_link(key)

    def setter(self, job) -> None:
        self._set_link(key, job, expected)
        if replaces and job is not None:
            self._drop(replaces)

    return property(getter, setter, doc=doc)


def settings_property(cls, key: str, doc: str = "", *, check=None) -> property:
    """A job property that stores the settings dataclass ``cls`` as ``input[key]``; it
    accepts an instance of ``cls`` or a dict of its fields.  ``check(settings)``, if given,
    raises :class:`InputError` for settings the job cannot run (called when they are set;
    the job calls it again when it runs, for edits of ``input[key]`` itself)."""

    def getter(self):
        return settings_from_dict(cls, self.input[key], key)

    def setter(self, settings) -> None:
        if isinstance(settings, dict):
            settings = settings_from_dict(cls, settings, key)
        if not isinstance(settings, cls):
            raise InputError(f"settings={settings!r} must be a {cls.__name__} or a dict of "
                             "its fields")
        if check is not None:
            check(settings)
        self.input[key] = settings_to_dict(settings)

    return property(getter, setter, doc=doc)


def settings_to_dict(settings) -> dict:
    """A settings dataclass as a plain dict (what the job's HDF5 stores)."""
    return dataclasses.asdict(settings)


def settings_from_dict(cls, doc, name: str):
    """Rebuild the dataclass ``cls`` from a stored dict.

    HDF5 returns booleans as integers and tuples as tuples; fields whose default is a bool
    are converted back.  Unknown keys raise :class:`InputError` naming ``name``.
    """
    doc = input_mapping(doc, name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(doc) - set(fields))
    if unknown:
        raise InputError(f"unknown keys {unknown} in job.input[{name!r}]; allowed: "
                         f"{sorted(fields)}")
    for key, f in fields.items():
        if key in doc and isinstance(f.default, bool):
            doc[key] = stored_bool(doc[key])
    return cls(**doc)


def stored_bool(value):
    """A boolean as HDF5 gives it back (an integer 0 or 1) as a bool; any other value as it
    is, for the settings' own check to name (``bool("false")`` would be True)."""
    if isinstance(value, (bool, np.bool_)) or (
            isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    return value


def input_reference(value) -> CalculatorSpec:
    """``job.input.reference`` as a :class:`CalculatorSpec`: a class path or a mapping."""
    return CalculatorSpec.coerce(value if isinstance(value, str) else
                                 input_mapping(value, "reference"))


def input_mapping(value, name: str) -> dict:
    """``job.input[name]`` as a dict (None: empty); InputError naming the setting when it is
    not a mapping (``dict("omp")`` gave a ValueError that named nothing)."""
    if value is None:
        return {}
    if isinstance(value, str) or not hasattr(value, "keys"):
        raise InputError(f"job.input.{name}={value!r} is not allowed: it must be a mapping of "
                         "settings (a dict); set it through the job's property of that name "
                         "(e.g. job.fit_settings, job.structure_spec), which checks it")
    return dict(value)


def model_to_text(model: Model) -> str:
    """The model file (JSON) of ``model`` as text."""
    with tempfile.TemporaryDirectory() as tmp:
        return model.save(Path(tmp) / MODEL_FILE).read_text()


def model_from_text(text: str) -> Model:
    """Load a model from the text of its model file (checked like a file on disk)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MODEL_FILE
        path.write_text(text)
        return load_model(path)
