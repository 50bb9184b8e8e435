"""Start-up: ``synctree --help`` and the imports, against a bare interpreter.

    python bench/startup.py [--runs 15]

Each figure is the median wall time of a fresh process.  Also checks that
``import synctree`` loads no anyio and ``import synctree.aio`` no SQLAlchemy or
httpx (a connector's dependencies load when the connector is used).
Target (issue 15): ``synctree --help`` and ``import synctree`` <= 0.15 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 0.15


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    python = sys.executable
    exe = str(Path(python).with_name("synctree"))
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "import synctree": [python, "-c", "import synctree"],
        "import synctree.aio": [python, "-c", "import synctree.aio"],
        "synctree --help": [exe, "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            times[name].append(wall(command))
    for name, values in times.items():
        median = statistics.median(values)
        target = (
            ""
            if name in ("python -c pass", "import synctree.aio")
            else (f"  (target <= {TARGET}s: {'met' if median <= TARGET else 'MISSED'})")
        )
        print(f"{name:<22} {median:6.3f}s{target}")
    probe = (
        "import sys, synctree; a = 'anyio' in sys.modules; import synctree.aio; "
        "print(a, 'sqlalchemy' in sys.modules, 'httpx' in sys.modules)"
    )
    loaded = subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True)
    anyio, sqlalchemy, httpx = loaded.stdout.split()
    print(
        f"import synctree loads anyio: {anyio}; import synctree.aio loads sqlalchemy: "
        f"{sqlalchemy}, httpx: {httpx}"
    )


if __name__ == "__main__":
    main()
