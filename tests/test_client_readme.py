"""The README's client example runs as written.

The ``python`` block under ``## Client`` is extracted verbatim and run in a fresh interpreter with
only environment variables to point it at a server, the way a reader would paste it.
"""

from __future__ import annotations

import re
import shutil
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

from tests.conftest import BuiltPlatform
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


def readme_shell_walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Client\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README.md's ## Client section has no shell example"
    return match.group(1)


def test_readme_shell_walkthrough_runs_from_a_fresh_checkout(
    tmp_path: Path, built_platform: BuiltPlatform, server_factory
) -> None:
    """The README's shell block, run by bash as written, in a directory laid out as a checkout
    after `make install` and `make demo`: only .venv/bin/pinsights, and the demo's store at
    demo-data/store served by a live server (its own keys, as `make demo` serves it). Only the
    two placeholders a reader fills in are replaced: the server's URL (the demo's port is ours)
    and the account."""
    checkout = tmp_path / "checkout"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "pinsights").symlink_to(Path(sys.executable).parent / "pinsights")
    store = checkout / "demo-data" / "store"
    shutil.copytree(built_platform.store, store)
    server = server_factory(store, secret=None)
    account = built_platform.ad_account_ids[0]
    script = readme_shell_walkthrough()
    assert "http://127.0.0.1:8000/v5" in script and "YOUR_AD_ACCOUNT_ID" in script
    script = script.replace("http://127.0.0.1:8000/v5", f"{server.base_url}/v5")
    script = script.replace("YOUR_AD_ACCOUNT_ID", account)
    env = scrubbed_environment(PATH="/usr/bin:/bin", COLUMNS="200")  # no pinsights on PATH
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "IMPRESSION_PLUS_ENGAGEMENT" in result.stdout, result.stdout  # definitions
    assert "YOUR_ENGAGED_AUDIENCE" in result.stdout or "ENGAGED" in result.stdout, result.stdout
    requests = [e for e in server.access_log() if account in e.get("path", "")]
    assert {e["status"] for e in requests} == {200}, requests
    assert len(requests) >= 2, "definitions and insights both reached the server"
