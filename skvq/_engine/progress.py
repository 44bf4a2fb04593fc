"""Progress messages of a fit, for ``verbose`` and the command line.

The engine says what it is doing through :func:`say`; whoever wants to hear
it (``VectorQuantizer(verbose=1)``, ``skvq encode --verbose``) installs a
reporter for the duration of the work with :func:`reporting`. A context
variable, not a parameter threaded through every function: the messages
come from deep inside the fit (each seeding, each run of Lloyd passes) and
cost nothing when nobody listens.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar

# (write, verbosity, start time) of the reporter in charge, or None.
_reporter: ContextVar = ContextVar("skvq_progress", default=None)


@contextmanager
def reporting(write, verbosity=1):
    """Send the messages of level ``verbosity`` and below to ``write``.

    ``write(line, level)`` takes one line of text (without its newline)
    and the message's level; each line starts with the seconds elapsed
    since the reporter was installed. A ``verbosity`` of 0 or less, or
    ``write=None``, reports nothing.
    """
    token = _reporter.set(
        (write, verbosity, time.perf_counter()) if write and verbosity > 0 else None
    )
    try:
        yield
    finally:
        _reporter.reset(token)


def say(message, level=1):
    """Report ``message`` if a reporter listens at ``level`` (1: stages, 2: details)."""
    reporter = _reporter.get()
    if reporter is None or level > reporter[1]:
        return
    write, _, start = reporter
    write(f"{time.perf_counter() - start:7.2f} s  {message}", level)
