# Backtest replay: runs of quiet trade frames without Python (see replay.pyx).
cdef enum:
    RP_STOP_END = 0        # the range is done
    RP_STOP_BEFORE = 1     # frame `stopped_at` is untouched: an in-flight event is due first
    RP_STOP_SCANNED = 2    # the venue's scanner applied it (scan_kind): the venue's Python takes over
    RP_STOP_ENGINE = 3     # through venue and pipeline; the engine has actions (n_actions) or a channel event
    RP_STOP_AFTER = 4      # fully handled; a timer (housekeeping, path sample) is due after it


cdef class QuietRunner:
    cdef list frames                      # (recv ns, raw bytes), the backtest's data
    cdef Py_ssize_t n_frames
    cdef long long burst_ns               # frames closer than this are one read (one cycle, on the last)
    cdef readonly int stop                # RP_STOP_* of the last run()
    cdef readonly int scan_kind           # SF_* of the frame stopped at with RP_STOP_SCANNED
    cdef readonly int n_actions           # actions of the frame stopped at with RP_STOP_ENGINE
    cdef readonly Py_ssize_t noted        # frames the last run() took through venue and pipeline
    cdef readonly long long last_ns       # recv ns of the last of them
    cdef readonly long long total_noted   # over all runs
