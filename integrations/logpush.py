"""Cloudflare Logpush files: gzip NDJSON, one JSON object per line.

Two datasets matter here:

- ``http_requests``: ``EdgeStartTimestamp``, ``EdgeResponseStatus``, ``EdgeTimeToFirstByteMs`` …
  and the custom field ``ResponseHeaders["x-pix-canary"]`` whose ``cohort`` says who served it.
- ``workers_trace_events``: ``EventTimestampMs``, ``Outcome``, ``ScriptName``, ``Logs``,
  ``Exceptions`` — where a failed R2 upload of the native handlers shows.

Timestamps come in whatever format the job was set up with: Unix nanoseconds (the API's
default), Unix seconds, RFC 3339 (the dashboard's default), or milli/microseconds. Numbers are
told apart by magnitude, which is unambiguous for any date after 1973.

Nothing here raises on bad input it is meant to survive: a line that cannot be read raises
``BadLine`` for the caller to count, and a damaged file yields what could be read plus an error.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Annotated

import msgspec
import orjson

from .edge_qa import parse_canary_header

try:  # ISA-L inflates gzip about twice as fast as zlib, with the same interface.
    from isal import isal_zlib as zlib
except ImportError:  # pragma: no cover - isal is a pinned dependency
    import zlib

HTTP_REQUESTS = "http_requests"
WORKERS_TRACE_EVENTS = "workers_trace_events"
DATASETS = (HTTP_REQUESTS, WORKERS_TRACE_EVENTS)
UNKNOWN_COHORT = "unknown"  # no or unreadable X-Pix-Canary: counted, but in neither cohort
CANARY_HEADER = "x-pix-canary"
PROBLEMS_KEPT = 5  # sample of bad lines kept per file
_NANOSECONDS = 10**17  # an integer timestamp above this is in Unix nanoseconds
PIECE = 64 * 1024  # bytes inflated at a time (see inflated)
# The native cohort's requests and 5xx are also counted per slice of this many seconds: the fine
# counts overwhelming evidence is judged on (a fault rarely starts on a minute).
SLICE_SECONDS = 10
SLICES_PER_MINUTE = 60 // SLICE_SECONDS

# An R2 upload failure as the native handlers log it: an error-level log line or an exception
# whose text names R2 and an upload / put.
UPLOAD_ERROR = re.compile(r"\bR2\b.*\b(upload|put)", re.IGNORECASE | re.DOTALL)
_GZIP_MAGIC = b"\x1f\x8b"


class BadLine(ValueError):
    """One line that could not be used; the message says why."""


# --- timestamps ---------------------------------------------------------------------------------


def timestamp_seconds(value: object) -> float:
    """Seconds since the epoch from any Logpush timestamp format."""
    if isinstance(value, bool):
        raise BadLine("timestamp is a boolean")
    if isinstance(value, int | float):
        magnitude = abs(value)
        if magnitude < 1e11:
            return float(value)  # seconds
        if magnitude < 1e14:
            return value / 1e3  # milliseconds
        if magnitude < 1e17:
            return value / 1e6  # microseconds
        return value / 1e9  # nanoseconds
    if isinstance(value, str):
        return _rfc3339_seconds(value)
    raise BadLine(f"timestamp of type {type(value).__name__}")


def _rfc3339_seconds(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadLine(f"timestamp {text[:40]!r} is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise BadLine(f"timestamp {text[:40]!r} has no time zone")
    return parsed.timestamp()


class _Rfc3339Minutes:
    """RFC 3339 strings of one file share a handful of minutes: parse each minute once.

    Only UTC strings (``…Z``) take the fast path; an offset such as ``+01:00`` is parsed in full.
    """

    __slots__ = ("cache",)

    def __init__(self) -> None:
        self.cache: dict[str, float] = {}

    def seconds(self, text: str) -> float:
        if len(text) >= 20 and text[-1] == "Z" and text[16] == ":" and text[19] in ".Z":
            base = self.cache.get(text[:16])
            if base is None:
                base = _rfc3339_seconds(text[:16] + ":00Z")
                self.cache[text[:16]] = base
            try:
                second = int(text[17:19])
            except ValueError:
                raise BadLine(f"timestamp {text[:40]!r} is not RFC 3339") from None
            if not 0 <= second <= 60 or not text[17:19].isdigit():
                raise BadLine(f"timestamp {text[:40]!r} is not RFC 3339")
            return base + second
        return _rfc3339_seconds(text)


# --- one line -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    seconds: float
    cohort: str
    status: int
    ttfb_ms: float


def _object(line: bytes | str) -> dict:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise BadLine("not a JSON object")
    return record


def cohort_of(headers: object) -> str:
    """The cohort from ``ResponseHeaders`` (any key case), or ``unknown``."""
    if not isinstance(headers, dict):
        return UNKNOWN_COHORT
    value = headers.get(CANARY_HEADER)
    if value is None:
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == CANARY_HEADER:
                value = candidate
                break
    if not isinstance(value, str):
        return UNKNOWN_COHORT
    header = parse_canary_header(value)
    return header.cohort if header.valid else UNKNOWN_COHORT


def _status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
        raise BadLine(f"EdgeResponseStatus {value!r} is not an HTTP status")
    return value


def _ttfb(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadLine(f"EdgeTimeToFirstByteMs {value!r} is not a duration")
    return value


_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _HttpFields(msgspec.Struct, gc=False):
    """The four fields ingestion reads of an ``http_requests`` line, for the file loop's fast path.

    Only lines whose fields are already the right kind decode: a bool, an object, a string
    status, a status outside 0-999, a negative integer TTFB, an integer outside int64 (which
    orjson would read as a float), headers that are not all strings … fail, and the loop reads
    that line again with orjson, as ``parse_http_request`` does, so a bad line gets the same
    reason whichever way it went. msgspec checks the syntax of the fields it skips but neither
    their UTF-8 (so only ASCII lines come here) nor whether a number fits a double: a line with,
    say, ``1e999`` in a field ingestion does not read counts here, where orjson calls it "not
    JSON".
    """

    EdgeStartTimestamp: _Int64 | float | str
    EdgeResponseStatus: Annotated[int, msgspec.Meta(ge=0, le=999)]
    EdgeTimeToFirstByteMs: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | float
    ResponseHeaders: dict[str, str] | None = None


HTTP_FIELDS = msgspec.json.Decoder(_HttpFields)  # the file loop's fast path (tests swap it)


def parse_http_request(line: bytes | str) -> HttpRequest:
    """One ``http_requests`` line. Raises BadLine."""
    record = _object(line)
    try:
        stamp = record["EdgeStartTimestamp"]
        status = record["EdgeResponseStatus"]
        ttfb = record["EdgeTimeToFirstByteMs"]
    except KeyError as exc:
        raise BadLine(f"no {exc.args[0]}") from None
    return HttpRequest(
        seconds=timestamp_seconds(stamp),
        cohort=cohort_of(record.get("ResponseHeaders")),
        status=_status(status),
        ttfb_ms=_ttfb(ttfb),
    )


@dataclass(frozen=True)
class TraceEvent:
    seconds: float
    outcome: str
    upload_error: bool


def _texts(entries: object) -> list[tuple[str, str]]:
    """(level, text) of each ``Logs`` / ``Exceptions`` entry, tolerating odd shapes."""
    found = []
    if not isinstance(entries, list):
        return found
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        level = str(entry.get("Level", "error")).lower()
        parts = [entry.get("Name"), entry.get("Message")]
        text = " ".join(
            " ".join(map(str, part)) if isinstance(part, list) else str(part)
            for part in parts
            if part is not None
        )
        found.append((level, text))
    return found


def parse_trace_event(line: bytes | str) -> TraceEvent:
    """One ``workers_trace_events`` line. Raises BadLine."""
    record = _object(line)
    if "EventTimestampMs" not in record:
        raise BadLine("no EventTimestampMs")
    logs = [text for level, text in _texts(record.get("Logs")) if level == "error"]
    exceptions = [text for _, text in _texts(record.get("Exceptions"))]
    upload_error = any(UPLOAD_ERROR.search(text) for text in logs + exceptions)
    return TraceEvent(
        seconds=timestamp_seconds(record["EventTimestampMs"]),
        outcome=str(record.get("Outcome", "")),
        upload_error=upload_error,
    )


# --- one file -----------------------------------------------------------------------------------


def decompress(raw: bytes) -> tuple[bytes, str]:
    """The NDJSON text of a Logpush object and what went wrong ('' if nothing).

    Concatenated gzip members are read one after the other. A truncated or damaged stream gives
    back everything decoded before the damage; bytes that are not gzip at all are taken as plain
    NDJSON if they look like it.
    """
    problems: list[str] = []
    text = b"".join(inflated(raw, problems))
    return text, "".join(problems)


def inflated(raw: bytes, problems: list[str]) -> Iterator[bytes]:
    """``decompress`` piece by piece: pieces of at most PIECE bytes, but for plain NDJSON (one
    piece) and what is salvaged of a damaged member. What went wrong goes into ``problems``.

    Ingestion parses the lines of each piece as it comes, while the piece is still in the CPU's
    cache: inflating a whole 5-minute file (1.3 MB) before splitting it into lines cost about 10%
    more time on one core, and 15-20% more with two processes at it."""
    if not raw:
        return
    if not raw.startswith(_GZIP_MAGIC):
        if raw.lstrip()[:1] == b"{":
            yield raw
        else:
            problems.append("not a gzip file")
        return
    rest = raw
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data = rest
        given = 0  # bytes of this member yielded so far
        try:
            while not inflater.eof:
                piece = inflater.decompress(data, PIECE)
                if piece:
                    given += len(piece)
                    yield piece
                elif len(inflater.unconsumed_tail) == len(data):
                    break  # no progress: the input ends before the stream does
                data = inflater.unconsumed_tail
        except zlib.error as exc:
            # Salvage what a fresh inflater yields before the damage, chunk by chunk.
            salvaged = _salvage(rest)
            if len(salvaged) > given:
                yield salvaged[given:]
            problems.append(f"corrupt gzip: {exc}")
            return
        if not inflater.eof:
            piece = inflater.flush()
            if piece:
                yield piece
            problems.append("truncated gzip: the file ends mid-stream")
            return
        rest = inflater.unused_data
        if rest and not rest.startswith(_GZIP_MAGIC):
            if rest.strip(b"\0"):
                problems.append("trailing bytes after the gzip stream")
            return


def _salvage(raw: bytes, chunk: int = 16 * 1024) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = []
    for start in range(0, len(raw), chunk):
        try:
            out.append(inflater.decompress(raw[start : start + chunk]))
        except zlib.error:
            break
    return b"".join(out)


class Cell:
    """What one file says about one minute of one cohort."""

    __slots__ = ("requests", "errors_5xx", "ttfb")

    def __init__(self) -> None:
        self.requests = 0
        self.errors_5xx = 0
        self.ttfb: dict = {}  # raw milliseconds → count


@dataclass
class FileSummary:
    dataset: str
    lines: int = 0
    bad_lines: int = 0
    problems: list[str] = field(default_factory=list)
    error: str = ""  # about the file as a whole (damaged gzip …)
    oldest: float | None = None
    newest: float | None = None
    # http_requests: (minute, cohort) → Cell, minute in whole minutes since the epoch
    cells: dict[tuple[int, str], Cell] = field(default_factory=dict)
    # workers_trace_events: minute → [events, upload errors]
    trace_minutes: dict[int, list[int]] = field(default_factory=dict)
    # http_requests, native cohort: slice (SLICE_SECONDS since the epoch) → [requests, 5xx]
    native_slices: dict[int, list[int]] = field(default_factory=dict)

    def bad(self, number: int, why: str) -> None:
        self.bad_lines += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(f"line {number}: {why}"[:300])

    def saw(self, seconds: float) -> None:
        if self.newest is None or seconds > self.newest:
            self.newest = seconds
        if self.oldest is None or seconds < self.oldest:
            self.oldest = seconds


def summarize(raw: bytes, dataset: str) -> FileSummary:
    """Read a whole object: decompress, parse every line, fold per minute (and cohort)."""
    problems: list[str] = []
    summary = FileSummary(dataset=dataset)
    if dataset == HTTP_REQUESTS:
        _summarize_http_requests(inflated(raw, problems), summary)
    elif dataset == WORKERS_TRACE_EVENTS:
        _summarize_trace_events(b"".join(inflated(raw, problems)), summary)
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    summary.error = "".join(problems)
    return summary


def _summarize_http_requests(pieces: Iterable[bytes], summary: FileSummary) -> None:
    # The hot loop of ingestion (a day of traffic is a million lines), so it does as little per
    # line as it can: msgspec decodes only the four fields of a line (see _HttpFields), and a
    # line it refuses (or one with bytes beyond ASCII) is read whole by orjson and its fields
    # checked, which gives a bad line its reason; the rest is cached per file. Lines come piece
    # by piece as the file inflates (see inflated). The slice being filled (SLICE_SECONDS) is a
    # range of seconds, so a line of the same slice costs two comparisons; the canary header's
    # value (a file repeats a handful) leads straight to its cohort's latencies of that slice,
    # appended to a list and counted once at the end, in C, per slice and per minute.
    decode = HTTP_FIELDS.decode
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    rfc3339 = _Rfc3339Minutes()
    latencies: dict[tuple[int, str], list] = {}  # (slice, cohort) → TTFB of each request
    errors_5xx: dict[tuple[int, str], int] = {}
    # This slice's [low, high) in seconds, and its header value → the append of a cell's list.
    part, low, high = 0, 0.0, 0.0
    appends: dict[str, object] = {}
    slices: dict[int, dict[str, object]] = {}
    newest = oldest = None
    done = lines = 0  # lines seen (the numbering goes on from piece to piece), and not empty
    rest = b""  # the start of a line that continues in the next piece
    for piece in chain(pieces, (None,)):
        if piece is None:
            parts = [rest]
            ascii_piece = rest.isascii()
        else:
            text = rest + piece
            ascii_piece = text.isascii()  # one check for the piece, not one per line
            parts = text.split(b"\n")
            rest = parts.pop()
        lines += len(parts) - parts.count(b"")
        first, done = done + 1, done + len(parts)
        for number, line in enumerate(parts, first):
            if not line:
                continue
            try:
                if not (ascii_piece or line.isascii()):
                    raise UnicodeError  # msgspec does not check the UTF-8 of fields it skips
                fields = decode(line)
                stamp = fields.EdgeStartTimestamp
                status = fields.EdgeResponseStatus
                ttfb = fields.EdgeTimeToFirstByteMs
                headers = fields.ResponseHeaders
            except Exception:  # any refusal: orjson reads the line and says what is wrong
                try:
                    record = loads(line)
                    stamp = record["EdgeStartTimestamp"]
                    status = record["EdgeResponseStatus"]
                    ttfb = record["EdgeTimeToFirstByteMs"]
                    headers = record.get("ResponseHeaders")
                except decode_error as exc:
                    summary.bad(number, f"not JSON: {exc}")
                    continue
                except KeyError as exc:
                    summary.bad(number, f"no {exc.args[0]}")
                    continue
                except (TypeError, AttributeError):
                    summary.bad(number, "not a JSON object of the http_requests dataset")
                    continue
            try:
                if type(stamp) is int and stamp > _NANOSECONDS:  # the common cases without a call
                    seconds = stamp / 1e9
                elif type(stamp) is str:
                    seconds = rfc3339.seconds(stamp)
                else:
                    seconds = timestamp_seconds(stamp)
                if type(status) is not int or not 0 <= status <= 999:
                    _status(status)
                if type(ttfb) is not int or ttfb < 0:
                    _ttfb(ttfb)
            except BadLine as exc:
                summary.bad(number, str(exc))
                continue
            if not low <= seconds < high:  # exactly when int(seconds // SLICE_SECONDS) != part
                part = int(seconds // SLICE_SECONDS)
                low = part * float(SLICE_SECONDS)
                high = low + SLICE_SECONDS
                appends = slices.setdefault(part, {})
                if newest is None:
                    newest = oldest = seconds
            try:
                add = appends[headers[CANARY_HEADER]]
            except (KeyError, TypeError):  # a header value not seen this minute, or no header
                key = (part, cohort_of(headers))
                add = latencies.setdefault(key, []).append
                value = headers.get(CANARY_HEADER) if type(headers) is dict else None
                if type(value) is str:
                    appends[value] = add
            add(ttfb)
            if status >= 500:
                key = (part, cohort_of(headers))
                errors_5xx[key] = errors_5xx.get(key, 0) + 1
            if seconds > newest:
                newest = seconds
            elif seconds < oldest:
                oldest = seconds
    cells = summary.cells
    for key, values in latencies.items():
        part, cohort = key
        requests, errors = len(values), errors_5xx.get(key, 0)
        cell = cells.get((part // SLICES_PER_MINUTE, cohort))
        if cell is None:
            cell = cells[(part // SLICES_PER_MINUTE, cohort)] = Cell()
            cell.ttfb = Counter()
        cell.requests += requests
        cell.errors_5xx += errors
        cell.ttfb.update(values)
        if cohort == "native":
            summary.native_slices[part] = [requests, errors]
    summary.lines += lines
    summary.newest, summary.oldest = newest, oldest


def _summarize_trace_events(text: bytes, summary: FileSummary) -> None:
    for number, line in enumerate(text.split(b"\n"), start=1):
        if not line or line.isspace():
            continue
        summary.lines += 1
        try:
            event = parse_trace_event(line)
        except BadLine as exc:
            summary.bad(number, str(exc))
            continue
        counts = summary.trace_minutes.setdefault(int(event.seconds // 60), [0, 0])
        counts[0] += 1
        if event.upload_error:
            counts[1] += 1
        summary.saw(event.seconds)
