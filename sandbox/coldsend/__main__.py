"""Run the ColdSend emulator in the foreground: ``python -m sandbox.coldsend --port 8765``.

Mint API keys with ``POST /_sandbox/keys`` (the control surface needs no key); the admin key
is never printed.
"""

from __future__ import annotations

import argparse

import uvicorn

from sandbox.coldsend.app import create_app


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.coldsend", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", default=None, help="SQLite file (default: in memory)")
    parser.add_argument("--seed", type=int, default=0, help="send simulation seed")
    parser.add_argument("--per-minute", type=int, default=100)
    parser.add_argument("--per-hour", type=int, default=1000)
    args = parser.parse_args(argv)
    app = create_app(
        db_path=args.db, seed=args.seed, per_minute=args.per_minute, per_hour=args.per_hour
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", lifespan="off")


if __name__ == "__main__":
    main()
