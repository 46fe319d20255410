"""Named SQL queries, read from the `.sql` files in db/sql/.

Each query is a block that starts with a line `-- name --` and a one-line description in a
second comment line, as in Procrastinate's own queries.sql. Parameters are always bound
(`%(name)s`), never formatted into the text.
"""

from __future__ import annotations

import re
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"
_BLOCK_START = re.compile(r"^-- ([a-z_][a-z0-9_]*) --$", re.MULTILINE)


def parse_query_blocks(text: str) -> dict[str, str]:
    names = list(_BLOCK_START.finditer(text))
    queries: dict[str, str] = {}
    for match, following in zip(names, names[1:] + [None]):
        end = following.start() if following else len(text)
        body = text[match.end() : end].strip()
        # Drop the description line(s) that follow the name.
        lines = [line for line in body.splitlines() if not line.startswith("--")]
        name = match.group(1)
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = "\n".join(lines).strip()
    return queries


def load_queries(directory: Path = SQL_DIR) -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, sql in parse_query_blocks(path.read_text()).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined in more than one file ({path.name})")
            queries[name] = sql
    return queries


QUERIES = load_queries()
