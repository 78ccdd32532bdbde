"""The DuckDB engine (the default): :class:`~pinsights.engine.duckdb.backend.DuckDBBackend` and
its raw-table reader (:mod:`pinsights.engine.duckdb.reader`)."""
