"""``python -m tests.google_emulator --port 8930 --key-out KEYFILE``: serve the emulator.

With ``--key-out``, a new service account key for this emulator is written there (mode
0600) and every API call must carry a token the emulator issued for an assertion signed
with it; without it, any caller is accepted.
"""

from __future__ import annotations

import argparse

import uvicorn

from . import GoogleEmulator, make_key, write_key


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.google_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8930)
    parser.add_argument("--domain", action="append", default=None, help="a domain (repeatable)")
    parser.add_argument("--key-out", default=None, help="write a service account key here")
    parser.add_argument("--directory-quota", type=int, default=2400)
    parser.add_argument("--classroom-quota", type=int, default=1200)
    parser.add_argument("--window", type=float, default=60.0, help="the quota's window (s)")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the emulator serves on loopback only")
    public = None
    if args.key_out:
        info, public = make_key(f"http://{args.host}:{args.port}/token")
        write_key(args.key_out, info)
    domains = tuple(
        args.domain
        or (
            "maplevalley.example.org",
            "students.maplevalley.example.org",
            "groups.maplevalley.example.org",
        )
    )
    emulator = GoogleEmulator(
        domains=domains,
        quota={"directory": args.directory_quota, "classroom": args.classroom_quota},
        window=args.window,
        public_key=public,
    )
    uvicorn.run(emulator.app, host=args.host, port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
