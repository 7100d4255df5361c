"""Reading log objects from where Logpush puts them: an R2 bucket or a local directory.

Deliberately free of Django: a process pool's children import only this module to fetch and
summarise objects in parallel while the parent folds the results into the database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from integrations import logpush, r2
from integrations.histogram import Histogram


class SourceUnavailable(Exception):
    """The source could not be read now; the next run tries again."""


class ObjectGone(SourceUnavailable):
    """The object vanished or changed between listing and reading it."""


@dataclass(frozen=True)
class SourceSpec:
    """Where a source's objects are, in plain data (picklable for a child process)."""

    kind: str  # "r2" or "directory"
    bucket: str = ""
    directory: str = ""
    endpoint_url: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    timeout: float = 10.0


@dataclass(frozen=True)
class ObjectRef:
    dataset: str
    key: str
    etag: str
    size: int
    last_modified: datetime


class DirectoryReader:
    """A folder laid out like the bucket: keys are paths relative to it.

    A file's ETag is its size and modification time, which change whenever it is rewritten.
    Names starting with a dot are files still being written (see edge_standin.logpush).
    """

    def __init__(self, spec: SourceSpec) -> None:
        self.root = Path(spec.directory)

    def list(self, dataset: str, prefix: str, start_after: str | None = None) -> list[ObjectRef]:
        """Keys under ``prefix``; with ``start_after``, only those sorting after it (as S3's
        ``StartAfter``), without entering folders whose every key sorts before it."""
        if not self.root.is_dir():
            raise SourceUnavailable(f"directory {self.root} does not exist")
        # The prefix may end inside a folder name, as an S3 prefix may; walk from its folder.
        folder = self.root / prefix[: prefix.rfind("/") + 1] if "/" in prefix else self.root
        found = []
        for dirpath, dirnames, filenames in os.walk(folder):
            if start_after:
                here = Path(dirpath).relative_to(self.root).as_posix()
                base = "" if here == "." else here + "/"
                dirnames[:] = [
                    name for name in dirnames if not _all_before(f"{base}{name}/", start_after)
                ]
            for name in filenames:
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix) or (start_after and key <= start_after):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                found.append(
                    ObjectRef(
                        dataset=dataset,
                        key=key,
                        etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",
                        size=stat.st_size,
                        last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
                    )
                )
        return found

    def read(self, ref: ObjectRef) -> bytes:
        path = self.root / ref.key
        try:
            stat = path.stat()
            if f"{stat.st_size:x}-{stat.st_mtime_ns:x}" != ref.etag:
                raise ObjectGone(f"{ref.key} changed since it was listed")
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ObjectGone(f"{ref.key} vanished since it was listed") from exc
        except OSError as exc:
            raise SourceUnavailable(f"reading {ref.key}: {exc}") from exc


class R2Reader:
    def __init__(self, spec: SourceSpec) -> None:
        self.bucket = spec.bucket
        self.s3 = r2.client(
            endpoint_url=spec.endpoint_url,
            access_key_id=spec.access_key_id,
            secret_access_key=spec.secret_access_key,
            timeout=spec.timeout,
        )

    def list(self, dataset: str, prefix: str, start_after: str | None = None) -> list[ObjectRef]:
        try:
            return [
                ObjectRef(dataset, item.key, item.etag, item.size, item.last_modified)
                for item in r2.list_objects(self.s3, self.bucket, prefix, start_after=start_after)
            ]
        except r2.R2Error as exc:
            raise SourceUnavailable(str(exc)) from exc

    def read(self, ref: ObjectRef) -> bytes:
        try:
            return r2.get_object(self.s3, self.bucket, ref.key, etag=ref.etag)
        except r2.ObjectGone as exc:
            raise ObjectGone(str(exc)) from exc
        except r2.R2Error as exc:
            raise SourceUnavailable(str(exc)) from exc


def _all_before(folder: str, key: str) -> bool:
    """Whether every key inside ``folder`` (ending in "/") sorts before or at ``key``."""
    return folder < key and not key.startswith(folder)


def reader_for(spec: SourceSpec) -> DirectoryReader | R2Reader:
    if spec.kind == "directory":
        return DirectoryReader(spec)
    if spec.kind == "r2":
        return R2Reader(spec)
    raise ValueError(f"unknown source kind {spec.kind!r}")


# --- fetching and summarising one object ---------------------------------------------------------


@dataclass
class ReadResult:
    """One object read and folded in memory, ready to be written (small: no raw lines)."""

    ref: ObjectRef
    summary: logpush.FileSummary | None = None
    histograms: dict | None = None  # (minute, cohort) → stored histogram (JSON list)
    unavailable: str = ""  # could not be fetched now: not claimed, tried again next run
    gone: str = ""  # vanished or changed after listing: not claimed either


def read_object(reader, ref: ObjectRef) -> ReadResult:
    try:
        raw = reader.read(ref)
    except ObjectGone as exc:
        return ReadResult(ref, gone=str(exc))
    except SourceUnavailable as exc:
        return ReadResult(ref, unavailable=str(exc))
    summary = logpush.summarize(raw, ref.dataset)
    histograms = {}
    for key, cell in summary.cells.items():
        histogram = Histogram()
        histogram.add_values(cell.ttfb)
        histograms[key] = histogram.to_bytes()
        cell.ttfb = None  # the raw tally is not needed past this point (nor worth pickling)
    return ReadResult(ref, summary=summary, histograms=histograms)


_readers: dict[SourceSpec, object] = {}


def read_in_child(spec: SourceSpec, ref: ObjectRef) -> ReadResult:
    """Entry point of a pool's child process: one reader (and R2 client) per process."""
    reader = _readers.get(spec)
    if reader is None:
        reader = _readers[spec] = reader_for(spec)
    return read_object(reader, ref)
