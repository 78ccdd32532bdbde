"""Benchmark: what the DP mode costs in accuracy and in build time (docs/privacy.md).

On one generated platform (the build benchmark's dataset, 1,000 ad accounts, cached under
``--data-dir``), it builds the exact snapshot once per repeat and a DP release per repeat (each
in a fresh store with its own secret: fresh noise), alternating, and prints:

- **utility**, over every T and E document whose exact audience has at least 1,000 people, for
  every DP release: the share of documents that keep the exact top-10 category order — for every
  pair of categories, one of them in the exact top 10, whose true counts differ by at least 2 %
  of the audience, the DP document lists the larger one first (a category it leaves out counts
  as last) — and the relative error of the audience size (median, 90th percentile);
- **time**: the best wall and CPU seconds of each mode and their ratio (DP / exact), with the
  load average before and after (the machine may be shared: compare ratios).

Usage::

    python benchmarks/privacy.py [--events 20000000] [--repeat 3] [--data-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from pinsights.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import DATA, ensure_dataset, run_measured

MIN_AUDIENCE = 1_000
NEAR_TIE = 0.02
TOP = 10


def documents(store: Path) -> dict[tuple[str, str], dict[str, Any]]:
    snapshot = Store(store).latest()
    assert snapshot is not None, f"no snapshot in {store}"
    rows = snapshot._cursor().execute("SELECT ad_account_id, insight_type, body FROM documents")
    return {(a, t): json.loads(bytes(b)) for a, t, b in rows.fetchall()}


def order_kept(exact: dict[str, Any], noisy: dict[str, Any]) -> bool:
    """Whether the DP document orders every well-separated pair touching the exact top 10 as
    the exact document does (near-ties, under 2 % of the audience apart, not counted)."""
    size = exact["size"]
    true = {c["id"]: round(c["ratio"] * size) for c in exact["categories"]}
    ranked = [c["id"] for c in exact["categories"]]
    position = {c["id"]: i for i, c in enumerate(noisy["categories"])}
    last = len(position) + 1
    for x in ranked[:TOP]:
        for y in ranked:
            if x == y or true[x] - true[y] < NEAR_TIE * size:
                continue
            if position.get(x, last) >= position.get(y, last):
                return False
    return True


def utility(exact: dict[tuple[str, str], Any], noisy: dict[tuple[str, str], Any]) -> dict[str, Any]:
    kept = total = 0
    errors: list[float] = []
    for key, document in exact.items():
        if document["type"] == "PINTEREST_TOTAL_AUDIENCE" or document["size_is_upper_bound"]:
            continue
        if document["size"] < MIN_AUDIENCE:
            continue
        other = noisy[key]
        total += 1
        kept += order_kept(document, other)
        errors.append(abs(other["size"] - document["size"]) / document["size"])
    errors.sort()
    return {
        "documents": total,
        "top10_order_kept": round(kept / total, 4) if total else None,
        "size_error_median": round(statistics.median(errors), 5) if errors else None,
        "size_error_p90": round(errors[int(0.9 * (len(errors) - 1))], 5) if errors else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--users-per-event", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=DATA, help="Where datasets are cached.")
    parser.add_argument("--json", action="store_true", help="Print results as JSON too.")
    args = parser.parse_args()
    data, end = ensure_dataset(
        args.data_dir, args.events, max(round(args.events * args.users_per_event), 1000)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINSIGHTS_")}
    base = [sys.executable, "-m", "pinsights.cli", "build", "--data", str(data)]
    base += ["--date", end.isoformat()]
    work = Path(tempfile.mkdtemp(prefix="bench-privacy-"))
    times: dict[str, list[tuple[float, float]]] = {"exact": [], "dp": []}
    draws: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    exact_documents: dict[tuple[str, str], Any] = {}
    try:
        for repeat in range(args.repeat):
            for mode in ("exact", "dp"):
                store = work / f"{mode}-{repeat}"
                command = [*base, "--store", str(store), "--privacy", mode]
                run_env = {**env, "PINSIGHTS_DP_SECRET": f"bench-privacy-secret-{repeat:04d}"}
                wall, cpu, _rss = run_measured(command, run_env)
                times[mode].append((wall, cpu))
                print(
                    f"{mode:>5} build {repeat + 1}: wall {wall:.2f} s, CPU {cpu:.2f} s", flush=True
                )
                if mode == "exact" and not exact_documents:
                    exact_documents = documents(store)
                if mode == "dp":
                    draws.append(utility(exact_documents, documents(store)))
                    print(f"        utility: {draws[-1]}", flush=True)
                shutil.rmtree(store, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    best = {
        mode: (min(w for w, _ in runs), min(c for _, c in runs)) for mode, runs in times.items()
    }
    result = {
        "events": args.events,
        "data": str(data),
        "repeat": args.repeat,
        "utility": draws,
        "top10_order_kept_mean": round(statistics.mean(d["top10_order_kept"] for d in draws), 4),
        "size_error_median_mean": round(statistics.mean(d["size_error_median"] for d in draws), 5),
        "exact_best": {"wall": round(best["exact"][0], 2), "cpu": round(best["exact"][1], 2)},
        "dp_best": {"wall": round(best["dp"][0], 2), "cpu": round(best["dp"][1], 2)},
        "ratio_wall": round(best["dp"][0] / best["exact"][0], 3),
        "ratio_cpu": round(best["dp"][1] / best["exact"][1], 3),
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average_after": [round(x, 1) for x in load_after],
    }
    print(
        f"\n{args.events:,} events: top-10 order kept {result['top10_order_kept_mean']:.1%} of"
        f" {draws[0]['documents']} documents (>= {MIN_AUDIENCE:,} people; mean of"
        f" {len(draws)} releases), size error median {result['size_error_median_mean']:.3%}"
    )
    print(
        f"build time DP / exact: wall {result['ratio_wall']} ({best['dp'][0]:.2f} / "
        f"{best['exact'][0]:.2f} s), CPU {result['ratio_cpu']} ({best['dp'][1]:.2f} / "
        f"{best['exact'][1]:.2f} s); load {load_before[0]:.1f} -> {load_after[0]:.1f}"
    )
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
