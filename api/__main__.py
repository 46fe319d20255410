"""Serve the HTTP API: python -m api [--host 0.0.0.0] [--port 8502]   (DATABASE_URL must be set)."""

from __future__ import annotations

import argparse

import uvicorn

from api.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Inkwell's HTTP API.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8502)
    args = parser.parse_args(argv)
    # One process: the event streams share one LISTEN connection; the work is the database's.
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
