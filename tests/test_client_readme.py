"""The README's client example runs as written.

The ``python`` block under ``## Client`` is extracted verbatim and run in a fresh interpreter with
only environment variables to point it at a server, the way a reader would paste it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from test_client_fakes import (
    ACCOUNT,
    TOKEN,
    Reply,
    ScriptedServer,
    definitions_document,
    insights_document,
    scripted,
)

from tests.processes import scrubbed_environment

__all__ = ["scripted"]

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_client_example() -> str:
    """The first ```python block of the README's ``## Client`` section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Client\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md's ## Client section has no python example"
    return match.group(1)


def run_example(base_url: str, token: str, account: str) -> subprocess.CompletedProcess[str]:
    env = scrubbed_environment(
        PINSIGHTS_BASE_URL=base_url, PINTEREST_ACCESS_TOKEN=token, PINSIGHTS_AD_ACCOUNT_ID=account
    )
    return subprocess.run(
        [sys.executable, "-c", readme_client_example()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_example_reads_only_its_environment(scripted: ScriptedServer) -> None:
    scripted.script(
        f"/ad_accounts/{ACCOUNT}/insights/audiences", Reply(200, definitions_document())
    )
    scripted.script(
        f"/ad_accounts/{ACCOUNT}/audience_insights",
        Reply(200, insights_document("YOUR_ENGAGED_AUDIENCE")),
        Reply(200, insights_document("PINTEREST_TOTAL_AUDIENCE")),
    )

    result = run_example(scripted.base_url, TOKEN, ACCOUNT)

    assert result.returncode == 0, result.stderr
    assert f"1,234 people engaged with account {ACCOUNT}" in result.stdout
    assert "Home decor" in result.stdout
    assert "ratio_pinterest_total_audience" in result.stdout
    assert {r.headers["authorization"] for r in scripted.requests} == {f"Bearer {TOKEN}"}


def test_readme_shell_walkthrough_runs_from_a_fresh_checkout() -> None:
    """After `make install` only .venv/bin/pinsights exists, and a token works only when minted
    from the store the server serves (`make demo`'s is demo-data/store): the README says both."""
    import inspect

    from pinsights.cli.demo import prepare
    from pinsights.cli.server_commands import demo

    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Client\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README.md's ## Client section has no shell example"
    code = [line.split("#", 1)[0] for line in match.group(1).splitlines()]
    commands = re.findall(r"([^\s(]*pinsights) (\w+)", "\n".join(code))
    assert len(commands) >= 3, match.group(1)
    for program, _ in commands:
        assert program == ".venv/bin/pinsights", f"{program} is not on PATH after make install"
    demo_dir = inspect.signature(demo).parameters["directory"].default.default
    assert 'directory / "store"' in inspect.getsource(prepare)
    token_lines = [line for line in code if "pinsights token" in line]
    assert token_lines and all(f"--store {demo_dir}/store" in line for line in token_lines)
