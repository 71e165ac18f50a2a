# The per-tick hot path: book -> estimators -> quote -> reconcile in C calls, stamping its stages
# into fixed latency histograms (no allocation per tick).
#
# Units: latencies in integer nanoseconds (perf_counter_ns differences); time in seconds.
cimport cython
from libc.stdint cimport int64_t

from hlfast.book cimport Book
from hlfast.estimators cimport CascadeDetector, Drift, FillIntensity, LatencyEwma, Volatility
from hlfast.frames cimport FrameRouter
from hlfast.histogram cimport LatencyHistogram
from hlfast.quoting cimport Calibration, QuoteInputs, Quoter, TargetLiquidity
from hlfast.reconcile cimport Reconciler
from hlfast.tape cimport Tape

# Pipeline.last_rc values besides the Quoter's own codes
cdef enum:
    PIPE_RC_NOT_READY = -10      # no two-sided book yet
    PIPE_RC_NOT_QUOTING = -11    # quoting disabled (risk / shutdown): only cancels


@cython.final
cdef class Pipeline:
    # kernels (owned; the engine reads them for metrics and bookkeeping)
    cdef readonly Book book
    cdef readonly Tape tape
    cdef readonly FrameRouter router         # raw frame -> book / tape (market connection)
    cdef readonly Volatility vol
    cdef readonly Drift drift
    cdef readonly FillIntensity fill_intensity
    cdef readonly CascadeDetector cascade
    cdef readonly LatencyEwma latency
    cdef readonly Quoter quoter
    cdef readonly TargetLiquidity target
    cdef readonly Calibration calibration
    cdef readonly Reconciler reconciler
    cdef readonly LatencyHistogram hist_quote    # estimators + quote + reconcile, ns
    cdef readonly LatencyHistogram hist_decode   # frame received -> applied to book/tape, ns
    cdef QuoteInputs qin

    # settings (from config; fractions, coins, USD)
    cdef public double gamma_base            # base risk aversion
    cdef public double sigma_ref             # sigma the vol factor is relative to (the prior)
    cdef public double toxicity              # toxicity factor on gamma (1 = neutral)
    cdef public double fee_maker             # fraction of notional
    cdef public double min_spread            # fraction
    cdef public double horizon               # s, drift horizon T
    cdef public double half_spread_mult
    cdef public double skew_mult
    cdef public int glft_mode                # GLFT_FULL / GLFT_SIMPLE
    cdef public double user_cap              # coins per side (inf = none)
    cdef public double max_position          # M, coins

    # state the engine sets between ticks (off the hot path)
    cdef public double position              # coins, signed
    cdef public double account_value         # USD
    cdef public double fill_rate             # own fills/s
    cdef public double exch_cap_bid          # exchange limit on new buys, coins (0 until known)
    cdef public double exch_cap_ask
    cdef public bint quoting                 # False: every resting order is a mandatory cancel
    cdef public bint pull_bid                # risk: cancel the whole bid side
    cdef public bint pull_ask
    cdef public bint hold                    # resync in progress: estimators run, no cycles

    # outputs of the last cycle
    cdef readonly int last_rc                # Quoter return code (or PIPE_* below)
    cdef readonly double gamma_eff
    cdef readonly double last_t
    cdef readonly long long book_ticks       # book updates processed
    cdef readonly long long trade_ticks      # trades processed
    cdef readonly long long cycles           # quote+reconcile cycles
    cdef readonly long long action_cycles    # cycles that produced actions
    cdef readonly long long not_ready        # cycles skipped: no two-sided book
    cdef readonly long long tape_seen        # next tape sequence number to feed the estimators
    cdef readonly int channel                # FR_CH_* code of the last frame
    cdef readonly long long md_frames        # l2Book/trades/bbo frames routed (applied or not)
    cdef readonly long long last_md_ns       # recv_ns of the newest of them (0 = none yet)
    cdef readonly int n_actions              # actions produced by the last frame

    cdef readonly bint stale                 # market state changed since the last cycle

    cpdef int on_frame(self, object raw, long long recv_ns, bint run_cycle=*)

    cdef int on_book_c(self, double t, bint run_cycle) noexcept
    cdef int on_trade_c(self, double t, long long px_ticks, double sz, int aggressor_side,
                        bint is_liquidation) noexcept
    cdef int cycle_c(self, double t) noexcept
