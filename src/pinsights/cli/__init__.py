"""The `pinsights` command line (the console script ``pinsights = "pinsights.cli:app"``).

Run as a file too (``spark-submit …/pinsights/cli/__init__.py build …``, docs/spark.md), and as
``python -m pinsights.cli`` (``__main__.py``).
"""

from pinsights.cli.app import app, main

__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover - run as a file, e.g. by spark-submit
    main()
