"""Incremental refresh: a build that reads only the event files that are new or changed.

:mod:`.state` is the kept state's format; :mod:`.check` the check step that uses it. The store
publishes the state atomically (:mod:`pinsights.store.state`); docs/engine.md says why the result
is exactly a full build's.
"""
