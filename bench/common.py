"""What the benchmark scripts share. They are run as ``python bench/<script>.py``, so this
module sits on their import path as ``common``."""

import subprocess
from urllib.parse import urlsplit


def recreate_database(url: str) -> None:
    """Drop and create the benchmark's own PostgreSQL database (the URL's last part), so that
    nothing of an earlier run is measured again."""
    parts = urlsplit(url)
    where = [
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
    ]
    name = parts.path.lstrip("/")
    subprocess.run(["dropdb", *where, "--if-exists", name], check=True)
    subprocess.run(["createdb", *where, name], check=True)


def percentile(values, fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` from 0 to 1); NaN when there is no value."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]
