"""Reliability figures: faults, interruption, bad input and secrets; writes docs/reliability.md.

Runs what ``tests/reliability/`` asserts, and reports it:

1. The fault scenario (``tests/reliability/scenario.py``): a 2,000-action sync (creates,
   updates, deletes) against a real HTTP server on 127.0.0.1 failing 10% of calls with
   every fault kind, on asyncio and on trio; then a second run.
2. Interruption: the in-memory store of ``test_interruption.py`` cancelled at random points
   (24 seeds per backend); the report is compared with what the store saw; then a rerun.
3. The bad input corpus (``tests/data/bad/`` and a generated 100 MB field) through
   ``synctree plan`` and ``synctree run``.
4. Secrets (``tests/reliability/leaks.py``): every output of syncs failing on purpose.

    python bench/reliability.py [--out docs/reliability.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synctree import Outcome  # noqa: E402
from tests.http_server import ALL_FAULTS, make_app, serve  # noqa: E402
from tests.reliability.classes import CLASSES  # noqa: E402
from tests.reliability.corpus import CASES, CORPUS, Case, big_field_csv, try_case  # noqa: E402
from tests.reliability.leaks import (  # noqa: E402
    Secrets,
    api_outputs,
    capture_logs,
    cli_outputs,
    closed_port,
    findings,
    log_texts,
    scenarios,
)
from tests.reliability.scenario import FaultRun, fault_scenario  # noqa: E402
from tests.reliability.test_interruption import (  # noqa: E402
    Store,
    applied,
    run_cancelled,
    sides,
    tree_of,
)

BACKENDS = ("asyncio", "trio")
FAULT_NAMES = {
    "429": "429, no Retry-After",
    "429_seconds": "429, Retry-After: 0 (seconds)",
    "429_date": "429, Retry-After: HTTP-date",
    "500": "500",
    "502": "502",
    "503": "503",
    "504": "504",
    "drop_before": "connection dropped before processing",
    "drop_after": "connection dropped after processing",
    "slow": "slow (0.5 s, past the 0.2 s attempt timeout)",
    "malformed": "malformed JSON body (work done)",
}


def faults() -> list[FaultRun]:
    async def one(backend: str) -> FaultRun:
        return await fault_scenario(backend=backend)

    return [anyio.run(one, backend, backend=backend) for backend in BACKENDS]


async def interrupted(seed: int) -> tuple[int, bool, bool]:
    """``(actions reported, report == what the store saw, a rerun converged)``."""
    rng = random.Random(seed)
    source, destination = sides()
    data = {k: dict(v) for k, v in destination.items()}
    store = Store(data, rng, fail_rate=0.05)
    report = await run_cancelled(
        store, tree_of(source, destination), rng, grace=rng.choice([0.0, 0.0005, 5.0])
    )
    keys = Counter((str(r.action.kind), r.action.idnumber) for r in report.results)
    succeeded = {
        (str(r.action.kind), r.action.idnumber)
        for r in report.results
        if r.outcome is Outcome.SUCCEEDED
    }
    honest = (
        max(keys.values(), default=1) == 1
        and set(store.landed) == succeeded
        and set(store.started) <= set(keys)
        and data == applied(report.results, destination)
    )
    tree = tree_of(source, data)
    rerun = await (tree.source > tree.destination).run(Store(data, random.Random(seed)))
    tree = tree_of(source, data)
    converged = rerun.ok and not list(tree.source > tree.destination)
    return len(report.results), honest, converged


def interruptions(seeds: int = 24) -> dict[str, Any]:
    runs = [
        anyio.run(interrupted, seed, backend=backend)
        for backend in BACKENDS
        for seed in range(seeds)
    ]
    return {
        "runs": len(runs),
        "reported": [n for n, _, _ in runs],
        "honest": sum(h for _, h, _ in runs),
        "converged": sum(c for _, _, c in runs),
    }


def inputs(folder: Path) -> list[tuple[Case, Any, str]]:
    """``(case, tried, outcome)`` for the corpus and the generated 100 MB field."""
    out = []
    for n, case in enumerate(CASES):
        tried = try_case(case, folder / f"case{n}")
        out.append((case, tried, outcome_of(case, tried)))
    big = Case("(generated) 100 MB single field", "one 100,000,000-character field")
    path = big_field_csv(folder / "big.csv")
    started = time.perf_counter()
    tried = try_case(big, folder / "big", source=path)
    seconds = time.perf_counter() - started
    out.append((big, tried, outcome_of(big, tried) + f", in {seconds:.2f} s"))
    path.unlink()
    return out


def outcome_of(case: Case, tried: Any) -> str:
    if tried.plan_code == tried.run_code == 0:
        loaded = "loads" if case.loads else "LOADS (expected an error)"
        again = "rerun: 0 actions" if tried.replan_actions == 0 else "RERUN NOT EMPTY"
        return f"{loaded}, exit 0; {again}"
    unchanged = "destination unchanged" if tried.destination_unchanged else "DESTINATION CHANGED"
    return f"exit {tried.plan_code}/{tried.run_code} (plan/run), {unchanged}"


def leaks(folder: Path) -> dict[str, Any]:
    found = Secrets()
    saved = {name: os.environ.get(name) for name in found.environ()}
    os.environ.update(found.environ())
    try:
        with serve(make_app(token=found.token)) as base_url, capture_logs() as records:
            postgres = os.environ.get("SYNCTREE_TEST_POSTGRES_URL")
            configs = scenarios(base_url, closed_port(), postgres)
            texts, _ = cli_outputs(folder, configs)
            texts |= anyio.run(api_outputs, base_url, closed_port(), found)
        texts |= log_texts(records)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    in_urls = findings(texts, {"url_secret": found.url_secret})
    return {
        "outputs": len(texts),
        "scenarios": list(configs),
        "found": findings(texts, found.named()),
        "url_found": [w for w in in_urls if not w.startswith("log httpx:")],
        "httpx_caveat": any(w.startswith("log httpx:") for w in in_urls),
        "chars": sum(map(len, texts.values())),
    }


def shown(message: str, tried: Any, folder: Path) -> str:
    """A message fit for the doc: temporary folders and the corpus path shortened."""
    text = message.replace(str(CORPUS), "tests/data/bad").replace(
        str(tried.config.parent), "<project>"
    )
    text = text.replace(str(folder), "<tmp>")
    return text.replace("|", "\\|").replace("\r", "\\r").replace("\n", "\\n")


def render(
    runs: list[FaultRun],
    cut: dict[str, Any],
    tried: list[tuple[Case, Any, str]],
    secrets: dict[str, Any],
    folder: Path,
) -> str:
    first = runs[0]
    planned = first.planned
    rejected = [t for t in tried if not t[0].loads and t[1].run_code == 2]
    loaded = [t for t in tried if t[0].loads]
    lines = [
        "# Reliability",
        "",
        "Regenerated by `python bench/reliability.py`; do not edit by hand. Each figure is",
        "asserted by a test in `tests/reliability/`.",
        f"Last run: {datetime.date.today().isoformat()}, Python {platform.python_version()},",
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs.",
        "",
        "## Summary",
        "",
        "| check | result |",
        "| --- | --- |",
    ]
    for run in runs:
        injected = sum(run.faults.values())
        lines.append(
            f"| faults injected ({run.backend}) | {injected} of {run.calls} calls "
            f"({injected / run.calls:.1%}), all {len(run.faults)} kinds (table below) |"
        )
    lines += [
        f"| actions | {first.actions:,} per run ({planned.get('new', 0):,} creates, "
        f"{planned.get('update', 0):,} updates, {planned.get('old', 0):,} deletes) |",
    ]
    for run in runs:
        outcomes = ", ".join(f"{n:,} {o}" for o, n in sorted(run.outcomes.items()))
        lines.append(
            f"| reported ({run.backend}) | {outcomes}; {run.missing} missing, "
            f"{run.repeated} twice; {run.seconds:.1f} s |"
        )
    lines += [
        "| lost | "
        + ", ".join(f"{r.lost} ({r.backend})" for r in runs)
        + " — planned but not reported, or reported succeeded but not on the server |",
        "| duplicated | "
        + ", ".join(f"{r.duplicated} ({r.backend})" for r in runs)
        + " — reported twice, or a create the server applied twice |",
        "| converged | "
        + ", ".join(
            f"{'yes' if r.converged else 'NO'} ({r.backend}: second plan {r.second_plan} actions)"
            for r in runs
        )
        + " |",
        f"| interrupted runs | {cut['runs']} cancelled at random points (24 seeds × asyncio, "
        f"trio; {min(cut['reported'])}–{max(cut['reported'])} of 170 actions reported): "
        f"report = what the destination saw in {cut['honest']}/{cut['runs']}, rerun "
        f"converged in {cut['converged']}/{cut['runs']} |",
        f"| inputs tried | {len(tried)}: {len(rejected)} rejected with one error, exit 2, "
        f"destination unchanged; {len(loaded)} load as they should (table below) |",
        f"| secrets found | **{len(secrets['found']) + len(secrets['url_found'])}** in "
        f"{secrets['outputs']} outputs ({secrets['chars']:,} characters) of "
        f"{len(secrets['scenarios'])} failing syncs (list below) |",
        "",
        "## Faults, by kind",
        "",
        "| fault | " + " | ".join(r.backend for r in runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
    ]
    for kind in ALL_FAULTS:
        lines.append(
            f"| {FAULT_NAMES[kind]} | "
            + " | ".join(str(r.faults.get(kind, 0)) for r in runs)
            + " |"
        )
    lines += [
        "| **total** | " + " | ".join(f"**{sum(r.faults.values())}**" for r in runs) + " |",
        "",
        "The template is what a user writes with httpx plus two habits the README recommends:",
        "`already_exists()` maps HTTP 409 to done, so a create whose first attempt may have",
        "landed is retried safely; and a 2xx whose body is not JSON raises `Retry`.",
        "Backoff is shortened for the run (`backoff_base=0.005`, `backoff_cap=0.05`);",
        "Retry-After values are honoured (`test_faults.py::TestRetryAfter` waits out 1 s",
        "in both forms). `HTTPReader` reading the users list retries 429/5xx, drops and",
        "timeouts, and fails a malformed page with one error naming its URL and number.",
        "",
        "## Inputs tried",
        "",
        "Through `synctree plan` and `synctree run` in a project whose destination is a CSV",
        "file; every error is the only one printed, with exit code 2, and the destination",
        "file keeps its bytes.",
        "",
        "| input | what | outcome | message |",
        "| --- | --- | --- | --- |",
    ]
    for case, result, outcome in tried:
        message = shown(result.message, result, folder) if result.message else ""
        lines.append(f"| `{case.name}` | {case.what} | {outcome} | {message} |")
    lines += [
        "",
        "Where a message names no field, there is none to name: the file is empty, has no",
        "rows, has a field beyond the header, or a row runs on (a quote never closed, a",
        "field past `csv.field_size_limit()`, 131,072 characters by default: such a field",
        "is an error, found after reading at most twice the limit past the last line end).",
        "A config has no lines that matter: its errors name the file, the table and the key.",
        "",
        "## Secrets",
        "",
        "A bearer token, a wrong token, a database password and a URL secret come from",
        "`${VAR}`s in configs (or arguments, from Python); these syncs fail on purpose:",
        "",
    ]
    lines += [f"- {name}" for name in secrets["scenarios"]]
    lines += [
        "- from Python: `HTTPReader` 401 and refused, `SQLReader` refused, a custom reader",
        "  whose httpx error quotes a URL with credentials, and templates failing on 401,",
        "  a refused connection and a refused database",
        "",
        "Searched: stdout and stderr of `plan`, `run` and `show` with `--verbose`, `--json`",
        "and `--quiet`; `--log` run logs; every log record of every logger at DEBUG; reports",
        "(`str`, `repr`, `to_json`, each failure's `to_dict` and traceback); synctree's",
        "exceptions (`str`, `repr`, traceback and the causes synctree chains); the reprs of",
        "configs, reader specs, readers and templates.",
        "",
        "**The httpx caveat.** httpx logs every request's URL at INFO (`HTTP Request: GET",
        "...`). A secret a user puts into a URL (`params = { access_token = ... }`, or",
        "`https://user:password@host`) is in those records"
        + (" (it was, in this run)" if secrets["httpx_caveat"] else "")
        + ", and nowhere else: synctree's",
        "messages, reports and run logs redact it. Tokens in headers and database passwords",
        "never reach a URL synctree builds, so no log record holds them. Keep credentials in",
        "headers, or raise the `httpx` logger's level above INFO.",
        "",
        "## Classes of defect, and the tests that hold them closed",
        "",
        "Each class was found by an adversarial run and fixed as a class, not a single case;",
        "`tests/reliability/test_classes.py` checks that every test named here exists.",
        "",
        *[
            line
            for defect in CLASSES
            for line in (
                f"- **{defect.name}.** {defect.rule}",
                *[f"  - `{test}`" for test in defect.tests],
            )
        ],
        "",
        "## Known gaps",
        "",
        "- `HTTPReader` does not retry a page whose body is not JSON; it fails clearly.",
        "- Import strings in a config import the module they name, and importing runs its",
        "  code: validation refuses what is not a template class or a reader before calling",
        "  it, but a config is still code (README): run only configs you trust.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("faults ...", flush=True)
        runs = faults()
        print("interruption ...", flush=True)
        cut = interruptions()
        print("inputs ...", flush=True)
        tried = inputs(folder / "inputs")
        print("secrets ...", flush=True)
        secrets = leaks(folder / "secrets")
        text = render(runs, cut, tried, secrets, folder)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
