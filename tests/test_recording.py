"""Recording format: `<receive_ns> <raw frame JSON>` per line, plain or gzip."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.recording import FrameWriter, iter_frames

FIXTURES = Path(__file__).parent / "fixtures"
REAL = FIXTURES / "hl_recorded_btc_20250126.gz"


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.gz"])
def test_roundtrip(tmp_path: Path, name: str) -> None:
    frames = [(1_700_000_000_000_000_000 + i, orjson.dumps({"channel": "trades", "i": i})) for i in range(100)]
    path = tmp_path / name
    with FrameWriter(path) as writer:
        for ns, raw in frames:
            writer.write(ns, raw)
    assert writer.frames == 100
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    reader = iter_frames(path)
    assert list(reader) == frames
    assert reader.malformed == 0 and reader.frames == 100


def test_writer_keeps_one_frame_per_line_and_accepts_str(tmp_path: Path) -> None:
    path = tmp_path / "rec.txt"
    with FrameWriter(path) as writer:
        writer.write(5, '{"a":\n 1,\r\n "b": [2]}')
        writer.write(6, bytearray(b'{"c":3}'))
        writer.write(7, memoryview(b'{"d":4}'))
    got = list(iter_frames(path))
    assert [ns for ns, _ in got] == [5, 6, 7]
    assert orjson.loads(got[0][1]) == {"a": 1, "b": [2]}
    assert len(path.read_text().splitlines()) == 3


def test_malformed_lines_are_counted_and_skipped_with_one_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(
        b'1 {"ok":1}\n'
        b"garbage-without-separator\n"
        b'12x4 {"bad":"stamp"}\n'
        b"\n"
        b"13 not-json\n"
        b'-5 {"neg":1}\n'
        b'2 {"ok":2}\n'
        b'3 ["ok",3]'  # no trailing newline
    )
    with caplog.at_level(logging.WARNING, logger="hlfast.recording"):
        reader = iter_frames(path)
        got = list(reader)
    assert [ns for ns, _ in got] == [1, 2, 3]
    assert reader.malformed == 4
    assert len([r for r in caplog.records if "malformed" in r.getMessage()]) == 1


def test_truncated_gzip_keeps_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    with FrameWriter(path, compresslevel=1) as writer:
        for i in range(5000):
            writer.write(i, orjson.dumps({"i": i, "pad": "x" * (i % 97)}))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    reader = iter_frames(path)
    got = list(reader)  # must not raise
    assert 0 < len(got) < 5000
    assert [ns for ns, _ in got] == list(range(len(got)))
    assert reader.malformed == 1


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "stream.log"
    path.write_bytes(gzip.compress(b'7 {"x":1}\n8 {"x":2}\n'))
    assert [ns for ns, _ in iter_frames(path)] == [7, 8]


def test_real_recording_reads_as_is() -> None:
    reader = iter_frames(REAL)
    got = list(reader)
    with gzip.open(REAL, "rb") as f:
        lines = f.read().splitlines()
    assert len(got) == len(lines) == 55
    assert reader.malformed == 0
    assert got[0][0] == 1737918843893903000
    assert got[0][1].startswith(b'{"channel":"l2Book","data":{"coin":"BTC"')
    for (ns, raw), line in zip(got, lines, strict=True):
        assert line == b"%d %s" % (ns, raw)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 2**63 - 1), st.dictionaries(st.text(max_size=8), st.text(max_size=20),
                                                                         max_size=4)), max_size=30))
def test_roundtrip_property(tmp_path_factory, items) -> None:
    path = tmp_path_factory.mktemp("rec") / "p.gz"
    with FrameWriter(path) as writer:
        for ns, obj in items:
            writer.write(ns, orjson.dumps(obj))
    got = list(iter_frames(path))
    assert [(ns, orjson.loads(raw)) for ns, raw in got] == items
