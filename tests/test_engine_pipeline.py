"""The Cython per-tick pipeline against the same kernels composed in Python, on the real BTC stream."""

from __future__ import annotations

import gzip
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.book import Book
from hlfast.estimators import CascadeDetector, Drift, FillIntensity, LatencyEwma, Volatility
from hlfast.frames import CH_L2BOOK, CH_TRADES, FrameRouter
from hlfast.pipeline import Pipeline, capacity
from hlfast.quoting import Calibration, Quoter, TargetLiquidity
from hlfast.reconcile import ACT_CANCEL, ExecutionBudget, Reconciler
from hlfast.tape import Tape
from tests.paths import HL_FIXTURES
from tests.reference.pipeline import PipelineRef, side_capacity

STREAM = HL_FIXTURES / "recorded_stream_btc_20250126.gz"
PARAMS = dict(gamma=0.1, sigma_ref=2.5e-4, fee_maker=1.5e-4, min_spread=1e-4, horizon=30.0)


def stack(levels: int = 5, max_position: float = 0.05):
    book = Book("BTC", 5)
    tape = Tape(5, 4096, ())
    kernels = dict(
        book=book, tape=tape, quoter=Quoter(5, levels),
        reconciler=Reconciler(64, levels, sz_decimals=5, budget=ExecutionBudget(initial=math.inf)),
        vol=Volatility(prior=2.5e-4), drift=Drift(), fill_intensity=FillIntensity(book.unit), cascade=CascadeDetector(),
        latency=LatencyEwma(), target=TargetLiquidity(max_levels=levels), calibration=Calibration(),
    )
    return kernels, max_position


def frames():
    with gzip.open(STREAM) as fh:
        for line in fh:
            ns, raw = line.rstrip(b"\n").split(b" ", 1)
            yield int(ns), raw


def settle(rec: Reconciler, free: list[int], t: float) -> list[tuple]:
    """Pretend every action was acked at once: places rest, modifies rest at the new price, cancels go."""
    out = rec.actions()
    for kind, slot, side, px, sz, _ in out:
        if kind == ACT_CANCEL:
            rec.order_gone(slot)
            free.append(slot)
            free.sort()
        else:
            if slot < 0:
                slot = free.pop(0)
            rec.order_placed(slot, side, px, sz, 0.0, t)
    return out


@pytest.mark.parametrize("position", [0.0, 0.03, -0.07])
def test_pipeline_matches_the_python_composition_on_the_real_stream(position):
    k1, max_pos = stack()
    k2, _ = stack()
    router = FrameRouter(k1["book"], k1["tape"], "BTC")
    pipe = Pipeline(k1["book"], quoter=k1["quoter"], reconciler=k1["reconciler"], tape=k1["tape"], router=router,
                    vol=k1["vol"], drift=k1["drift"], fill_intensity=k1["fill_intensity"], cascade=k1["cascade"],
                    latency=k1["latency"], target=k1["target"], calibration=k1["calibration"],
                    max_position=max_pos, account_value=100_000.0, **PARAMS)
    pipe.quoting = True
    pipe.exch_cap_bid = pipe.exch_cap_ask = math.inf
    pipe.position = position
    ref = PipelineRef(**k2, max_position=max_pos, account_value=100_000.0, **PARAMS)
    ref.position = position
    free1, free2 = list(range(64)), list(range(64))
    n_total = books = trades = 0
    for ns, raw in frames():
        t = ns / 1e9
        n1 = pipe.on_frame(raw, ns)
        n2 = ref.on_frame(raw, t)
        assert n1 == n2
        books += pipe.channel == CH_L2BOOK
        trades += pipe.channel == CH_TRADES
        a1, a2 = settle(k1["reconciler"], free1, t), settle(k2["reconciler"], free2, t)
        assert a1 == a2
        assert k1["vol"].sigma_eff == k2["vol"].sigma_eff and k1["drift"].mu == k2["drift"].mu
        n_total += n1
    assert books == 46 and trades == 9
    assert pipe.book_ticks == 46 and pipe.trade_ticks > 0 and n_total > 0
    assert pipe.hist_quote.count == pipe.cycles
    # recording stamps are wall-clock ns, not perf_counter_ns: the decode stage refuses them as negative
    assert pipe.hist_decode.count + pipe.hist_decode.rejected == 55
    if position > max_pos:  # long beyond the limit: no bid may be placed
        assert all(side == -1 for kind, _, side, *_ in k1["reconciler"].actions() if kind != ACT_CANCEL)


@given(st.floats(-10, 10, allow_nan=False), st.floats(0, 10, allow_nan=False), st.sampled_from([1, -1]))
@settings(deadline=None, max_examples=300)
def test_side_capacity_matches_reference(position, max_position, side):
    assert capacity(position, max_position, side) == side_capacity(position, max_position, side)
    cap = capacity(position, max_position, side)
    assert cap >= 0.0
    if abs(position) > max_position:
        increasing = 1 if position < 0 else -1  # the side that would grow |p|... is the other one
        assert capacity(position, max_position, -increasing) == 0.0
        assert capacity(position, max_position, increasing) == pytest.approx(abs(position))


def test_not_quoting_turns_every_resting_order_into_a_cancel():
    k, max_pos = stack()
    router = FrameRouter(k["book"], k["tape"], "BTC")
    pipe = Pipeline(k["book"], quoter=k["quoter"], reconciler=k["reconciler"], tape=k["tape"], router=router,
                    max_position=max_pos, account_value=100_000.0)
    pipe.quoting = True
    pipe.exch_cap_bid = pipe.exch_cap_ask = 1.0
    free = list(range(64))
    placed = 0
    it = frames()
    for ns, raw in it:
        pipe.on_frame(raw, ns)
        placed += sum(1 for a in settle(k["reconciler"], free, ns / 1e9) if a[0] != ACT_CANCEL)
        if placed:
            break
    resting = 64 - len(free)
    assert resting > 0
    pipe.quoting = False
    n = pipe.cycle(1e9)
    acts = k["reconciler"].actions()
    assert n == resting and all(a[0] == ACT_CANCEL and a[5] for a in acts)  # all mandatory cancels
    pipe.hold = True
    assert pipe.cycle(1e9) == 0  # resync hold: no cycle at all


def test_garbage_frames_are_counted_not_raised():
    k, max_pos = stack()
    router = FrameRouter(k["book"], k["tape"], "BTC")
    pipe = Pipeline(k["book"], quoter=k["quoter"], reconciler=k["reconciler"], tape=k["tape"], router=router,
                    max_position=max_pos, account_value=100_000.0)
    for raw in (b"{", b"[]", b'{"channel":"l2Book"}', b'{"channel":"l2Book","data":{"coin":"BTC"}}', b"\xff"):
        assert pipe.on_frame(raw, 1) == 0
    assert router.malformed >= 3 and pipe.cycles == 0


def test_a_burst_is_applied_whole_and_quoted_once():
    k, max_pos = stack()
    router = FrameRouter(k["book"], k["tape"], "BTC")
    pipe = Pipeline(k["book"], quoter=k["quoter"], reconciler=k["reconciler"], tape=k["tape"], router=router,
                    max_position=max_pos, account_value=100_000.0)
    pipe.quoting = True
    pipe.exch_cap_bid = pipe.exch_cap_ask = 1.0
    burst = [raw for _, raw in frames()][:6]
    for raw in burst[:-1]:
        assert pipe.on_frame(raw, 10, False) == 0
    assert pipe.cycles == 0 and pipe.stale and pipe.book_ticks >= 4
    assert pipe.on_frame(b'{"channel":"pong"}', 10, True) > 0  # the stale state is quoted at the burst's end
    assert pipe.cycles == 1 and not pipe.stale
