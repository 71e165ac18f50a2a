"""Recorded websocket streams: one frame per line, ``<receive_time_ns> <raw frame JSON>``.

Plain text or gzip (chosen by the ``.gz`` suffix when writing, by the gzip magic bytes when reading).
This is the format of the real mainnet recording in the fixtures and of hftbacktest's collector, so
those files replay as they are.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Iterator
from types import TracebackType
from typing import IO

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"


def _open_for_reading(path: str | os.PathLike[str]) -> IO[bytes]:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    return open(path, "rb", buffering=1 << 16)  # closed by FrameReader.close


class FrameReader:
    """Iterator of ``(receive_ns, raw_frame_bytes)`` over a recording.

    Malformed lines (no timestamp, a timestamp that is not a non-negative integer, no frame) and a
    truncated gzip tail are counted in ``malformed`` and skipped, with one warning per file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self.lines = 0
        self.frames = 0
        self.malformed = 0
        self._warned = False
        self._file = _open_for_reading(path)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return self

    def _bad(self, what: str) -> None:
        self.malformed += 1
        if not self._warned:
            self._warned = True
            log.warning("%s: skipping malformed recording line %d (%s); further ones only counted",
                        self.path, self.lines, what)

    def __next__(self) -> tuple[int, bytes]:
        while True:
            try:
                line = self._file.readline()
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
                # A recording cut off mid-write: keep everything read so far.
                self._bad(f"truncated compressed stream: {exc}")
                self.close()
                raise StopIteration from None
            if not line:
                self.close()
                raise StopIteration
            self.lines += 1
            space = line.find(b" ")
            if space <= 0:
                if line.strip():
                    self._bad("no timestamp separator")
                continue
            stamp = line[:space]
            if not stamp.isdigit():
                self._bad("timestamp is not an integer")
                continue
            frame = line[space + 1 :].strip()
            if not frame or frame[0] not in b"{[":
                self._bad("frame is not JSON")
                continue
            self.frames += 1
            return int(stamp), frame

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def iter_frames(path: str | os.PathLike[str]) -> FrameReader:
    """Frames of a recording in file (receive) order; see :class:`FrameReader` for the counters."""
    return FrameReader(path)


class FrameWriter:
    """Appends frames to a recording; gzip when the path ends with ``.gz``.

    ``write`` never raises on frame content: line breaks inside a frame (only possible as JSON
    whitespace) are replaced by spaces so one frame stays one line.
    """

    def __init__(self, path: str | os.PathLike[str], compresslevel: int = 6) -> None:
        self.path = str(path)
        self.frames = 0
        if self.path.endswith(".gz"):
            self._file: IO[bytes] = gzip.open(self.path, "wb", compresslevel=compresslevel)
        else:
            self._file = open(self.path, "wb")  # closed by close()

    def write(self, recv_ns: int, raw: bytes | bytearray | memoryview | str) -> None:
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        if b"\n" in data or b"\r" in data:
            data = data.replace(b"\r", b" ").replace(b"\n", b" ")
        self._file.write(b"%d %s\n" % (recv_ns, data.strip()))
        self.frames += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
