"""The pipeline's fixed latency histogram against the plain-Python reference."""

from hypothesis import given, settings
from hypothesis import strategies as st

from hlfast.histogram import LatencyHistogram
from tests.reference import latency_histogram as ref


@given(st.integers(min_value=0, max_value=(1 << 50)))
@settings(deadline=None, max_examples=300)
def test_bucket_index_matches_reference_and_bounds_contain_value(ns):
    idx = LatencyHistogram.bucket_index(ns)
    assert idx == ref.bucket_of(ns)
    assert ns < LatencyHistogram.bucket_bound(idx)
    if idx > 0:
        assert ns >= LatencyHistogram.bucket_bound(idx - 1)


def test_bucket_width_is_at_most_an_eighth():
    for idx in range(8, 400):
        lo, hi = LatencyHistogram.bucket_bound(idx - 1), LatencyHistogram.bucket_bound(idx)
        assert hi > lo
        assert (hi - lo) / lo <= 0.125 + 1e-12


@given(st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300),
       st.sampled_from([0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0]))
@settings(deadline=None, max_examples=200)
def test_quantiles_match_reference(samples, q):
    h = LatencyHistogram()
    for s in samples:
        h.record(s)
    assert h.count == len(samples)
    assert h.min_ns == min(samples) and h.max_ns == max(samples)
    assert h.sum_ns == float(sum(samples))
    got = h.quantile(q)
    assert got == ref.histogram_quantile(samples, q)
    exact = ref.exact_quantile(samples, q)
    assert exact <= got <= max(exact * 1.125 + 1, exact)


def test_negative_samples_are_refused_and_reset_clears():
    h = LatencyHistogram()
    h.record(-5)
    assert h.rejected == 1 and h.count == 0 and h.quantile(0.5) == 0
    for v in (100, 200, 300):
        h.record(v)
    assert h.cumulative([50, 120, 10**9]) == [0, 1, 3]
    h.reset()
    assert h.count == 0 and sum(h.bucket_counts()) == 0
