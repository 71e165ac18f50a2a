# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Backtest replay: runs of quiet trade frames without Python.

Most frames of a replay are trades that reach none of our orders and leave the engine with nothing to
send. For those, the simulated venue's work is its scanner's (volume noted for the queue model) and the
engine's is its pipeline's (book, tape, estimators, quote, reconcile), so the backtest loop hands runs
of them to QuietRunner.run, which calls both kernels back to back and stops, before or after a frame,
wherever Python has work: an in-flight event or a timer due, a frame the venue must handle itself, an
action to send. The per-frame loop in hlfast/backtest.py does everything else and remains the
reference: both give identical results (tested).
"""
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.tuple cimport PyTuple_GET_ITEM

from hlfast.frames cimport FR_CH_MALFORMED, FR_CH_PONG
from hlfast.pipeline cimport Pipeline
from hlfast.simfeed cimport SF_TRADES_NOTED, FrameScanner

STOP_END = RP_STOP_END
STOP_BEFORE = RP_STOP_BEFORE
STOP_SCANNED = RP_STOP_SCANNED
STOP_ENGINE = RP_STOP_ENGINE
STOP_AFTER = RP_STOP_AFTER


cdef inline long long frame_ns(list frames, Py_ssize_t i):
    return <long long><object>PyTuple_GET_ITEM(<object>PyList_GET_ITEM(frames, i), 0)


cdef class QuietRunner:
    def __init__(self, list frames, long long burst_ns):
        self.frames = frames
        self.n_frames = PyList_GET_SIZE(frames)
        self.burst_ns = burst_ns

    def run(self, Py_ssize_t start, Py_ssize_t end, long long due_ns, double timer_due_s,
            FrameScanner scanner, tuple levels, tuple traded, Pipeline pipeline) -> int:
        """Take frames[start:end] through venue and engine while they are quiet; returns the index stopped at.

        due_ns: the first in-flight event (no frame at or after it is started); timer_due_s: the first
        engine or backtest timer, checked after each frame as the Python loop does (recv_ns / 1e9)."""
        cdef Py_ssize_t i
        cdef long long ns, next_ns
        cdef object item, raw
        cdef int kind, n, ch
        self.noted = 0
        self.n_actions = 0
        self.scan_kind = 0
        for i in range(start, end):
            item = <object>PyList_GET_ITEM(self.frames, i)
            ns = <long long><object>PyTuple_GET_ITEM(item, 0)
            if ns >= due_ns:
                self.stop = RP_STOP_BEFORE
                return i
            raw = <object>PyTuple_GET_ITEM(item, 1)
            kind = scanner.scan_apply(raw, levels, traded)
            if kind != SF_TRADES_NOTED:
                self.stop = RP_STOP_SCANNED
                self.scan_kind = kind
                return i
            self.noted += 1
            self.total_noted += 1
            self.last_ns = ns
            next_ns = frame_ns(self.frames, i + 1) if i + 1 < self.n_frames else ns + self.burst_ns + 1
            n = pipeline.on_frame(raw, ns, next_ns - ns > self.burst_ns)
            ch = pipeline.channel
            if n > 0 or ch == FR_CH_PONG or ch == FR_CH_MALFORMED:
                self.stop = RP_STOP_ENGINE
                self.n_actions = n
                return i
            if ns / 1e9 >= timer_due_s:
                self.stop = RP_STOP_AFTER
                return i
        self.stop = RP_STOP_END
        return end
