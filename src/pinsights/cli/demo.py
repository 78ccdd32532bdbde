"""``pinsights demo``: a synthetic platform, built and served, with a token ready to use.

The platform is sized so that generating and building take about a minute on a 2-core machine;
a second run reuses the built store (``--fresh`` starts over).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from pinsights.store import Store

DEMO_USERS = 250_000
DEMO_ACCOUNTS = 30
DEMO_DAYS = 30
DEMO_SEED = 7
DEMO_CLIENT = "demo"
#: Name of the client registered for the dashboard on each demo run (earlier ones are revoked).
DEMO_DASHBOARD_CLIENT = "demo dashboard"
#: Written after a successful build; its presence means the store can be reused.
DEMO_MARKER = "demo.json"


@dataclass(frozen=True)
class DemoPlatform:
    store_dir: Path
    ad_account_ids: list[str]
    built: bool  # False when an existing store was reused


def prepare(directory: Path, *, fresh: bool = False, progress: bool = False) -> DemoPlatform:
    """Generate and build the demo platform under ``directory`` unless it is already there."""
    from pinsights.cli.build_screens import build_progress
    from pinsights.engine.settings import BuildSettings
    from pinsights.store.publish import build
    from pinsights.synthetic.generate import generate

    data_dir, store_dir = directory / "data", directory / "store"
    marker = directory / DEMO_MARKER
    if fresh:
        marker.unlink(missing_ok=True)
        shutil.rmtree(store_dir, ignore_errors=True)
    if marker.exists() and Store(store_dir).latest() is not None:
        accounts = json.loads(marker.read_text())["ad_account_ids"]
        return DemoPlatform(store_dir=store_dir, ad_account_ids=accounts, built=False)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    summary = generate(
        data_dir,
        users=DEMO_USERS,
        accounts=DEMO_ACCOUNTS,
        days=DEMO_DAYS,
        seed=DEMO_SEED,
        progress=progress,
    )
    with build_progress(progress) as on_step:
        build(BuildSettings(data_dir=data_dir, store_dir=store_dir), on_step=on_step)
    accounts = list(summary.ad_account_ids)
    marker.write_text(json.dumps({"ad_account_ids": accounts}) + "\n")
    return DemoPlatform(store_dir=store_dir, ad_account_ids=accounts, built=True)


def dashboard_client(store_dir: Path, ad_account_ids: list[str]) -> tuple[str, str]:
    """A fresh client id and secret for signing in to the dashboard, for ``ad_account_ids``.

    Secrets are only ever stored hashed, so a restarted demo cannot print the previous one: it
    registers a new client and revokes the demo's earlier ones, so only one set of demo
    credentials works at a time.
    """
    from pinsights.server.clients import ClientRegistry

    registry = ClientRegistry(store_dir)
    for client in registry.clients():
        if client.name == DEMO_DASHBOARD_CLIENT and not client.revoked:
            registry.revoke(client.client_id)
    client, secret = registry.add(DEMO_DASHBOARD_CLIENT, ad_account_ids)
    return client.client_id, secret
