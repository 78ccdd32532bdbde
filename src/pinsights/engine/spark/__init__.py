"""The Spark engine (the ``spark`` extra): the same Ibis definition run by Ibis' PySpark backend.

- :mod:`.session` starts and stops the session (settings, driver memory, Java check);
- :mod:`.backend` is :class:`~pinsights.engine.spark.backend.SparkBackend`, the build's backend;
- :mod:`.reader` reads a table's files (local or behind a URL, listed through Hadoop);
- :mod:`.class_archive` keeps the JVM's class-data-sharing archive between builds.

Nothing here imports PySpark at module level: the build imports this package only for
``--engine spark``.
"""
