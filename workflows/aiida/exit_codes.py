"""Every exit code of the mlip work chains and calcfunctions, in one table.

Numbers are unique across the plugin and stay out of the 100s that AiiDA reserves; a work
chain declares the ones it can return with :func:`declare`, and a calcfunction returns
:func:`exit_code` so that its parent can report the same status.
"""

from __future__ import annotations

from aiida.engine import ExitCode

__all__ = ["EXIT_CODES", "declare", "exit_code", "reason", "kept_note"]

#: label -> (status, message); ``{...}`` fields are filled by ``.format(**kwargs)``.
EXIT_CODES: dict[str, tuple[int, str]] = {
    "ERROR_STRUCTURE_GENERATION_FAILED": (
        301, "Generating the training structures failed: {message}"),
    "ERROR_ALL_REFERENCE_FAILED": (
        310, "All {n} reference calculations failed (e.g. {example}); see the output "
             "`failed_structures`. Check the reference calculator or workflow and its "
             "inputs; with caching enabled a rerun tries every structure again."),
    "ERROR_TOO_MANY_REFERENCE_FAILED": (
        311, "{n_failed} of {n} reference calculations failed, more than the allowed "
             "fraction {max_failed_fraction}; see the output `failed_structures`."),
    "ERROR_REFERENCE_CALCULATION_FAILED": (
        312, "The reference calculation step failed: {message}"),
    "ERROR_FIT_FAILED": (
        320, "The fit failed: {message}"),
    "ERROR_EVALUATION_FAILED": (
        321, "Evaluating the model on the test set failed: {message}"),
    "ERROR_VALIDATION_FAILED": (
        330, "The property validation failed: {message}"),
    "ERROR_SUB_PROCESS_FAILED": (
        340, "The sub-process {name}<{pk}> failed with exit status {status}: {message}"),
}


def declare(spec, *labels: str) -> None:
    """Declare the exit codes ``labels`` on a process ``spec``."""
    for label in labels:
        status, message = EXIT_CODES[label]
        spec.exit_code(status, label, message=message, invalidates_cache=False)


def exit_code(label: str, **kwargs) -> ExitCode:
    """An :class:`ExitCode` with its message filled in (for calcfunctions)."""
    status, message = EXIT_CODES[label]
    return ExitCode(status, message.format(**kwargs))


def reason(label: str, message: str | None) -> str:
    """``message`` without the leading text of ``EXIT_CODES[label]``: what to pass as
    ``message`` when a work chain reports, under ``label``, the failure of a calcfunction
    that returned ``exit_code(label, ...)`` itself, so that the prefix appears once.

    A message that does not start with the prefix (another exit code) is returned whole.
    """
    prefix = EXIT_CODES[label][1].partition("{message}")[0]
    message = message or ""
    return message[len(prefix):] if prefix and message.startswith(prefix) else message


def kept_note(what: str, stored: str) -> str:
    """What to add to a failure's message when ``what`` finished before it and are stored
    (``stored``: which, with their pks), so that a rerun with caching reuses them; "" when
    nothing finished."""
    if not stored:
        return ""
    return (f"; the {what} finished before are stored ({stored}), and with caching enabled a "
            "rerun reuses them")
