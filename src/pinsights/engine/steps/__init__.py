"""The steps of a build, one module each, in the order data flows (see :mod:`pinsights.engine.build`).

- :mod:`.check`: read → validate (with :mod:`.schedule`'s order of tables) → quarantine, and the
  dense keys the later steps join on;
- :mod:`.dates`: which dates to build, from the checked events;
- :mod:`.counts`: facts → memberships → counts, per date (in the DP mode, bounded parts counted
  by the engine, then noised: :mod:`pinsights.engine.dp.step`);
- :mod:`.documents`: the catalogue of names, then every document;
- :mod:`.publish`: what the build hands to the place it publishes to (the store implements it).

Each step owns the intermediate tables it makes (a :class:`~.scope.Scope`) and frees them when no
later step reads them; :class:`~.run.Run` times the steps and counts their rows for the report.
"""

from __future__ import annotations

#: The steps in the order a build runs them (the progress bar counts them).
STEPS = (
    "read",
    "validate",
    "quarantine",
    "facts",
    "memberships",
    "counts",
    "noise",  # the DP mode only
    "documents",
    "publish",
)


class BuildError(Exception):
    """The build stopped; nothing was published. The message says why, precisely."""
