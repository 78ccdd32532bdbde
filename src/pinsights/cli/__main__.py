"""``python -m pinsights.cli``: the `pinsights` command."""

from pinsights.cli.app import main

if __name__ == "__main__":  # pragma: no cover - console entry point
    main()
