# cython: language_level=3
"""Header-only JSON scanning primitives over (p, end) byte ranges, in C.

The raw-frame scanners (frames.pyx, simfeed.pyx) take only a strict subset of JSON and hand
anything else to a general decoder, so a reader may always refuse.  Readers start on their
token's first byte and return the position just past it, or NULL when the input is outside
the subset:

- strings: printable ASCII (32..126) without escapes;
- integers: canonical (no leading zero, no "-0"), at most 18 digits, no fraction or exponent;
- skipped values: a scalar or a flat array of scalars.

``ws`` says whether JSON whitespace may stand between tokens: JS_ANY_WS for frames from the
network, JS_COMPACT for the recorder's canonical bytes (which are spliced back verbatim).
Callers pass the constant, so the C compiler drops the whitespace loop of the compact form.
"""

from libc.string cimport memcmp, strlen

cdef enum:
    JS_COMPACT = 0
    JS_ANY_WS = 1


cdef inline const char* js_ws(const char* p, const char* end, bint ws) noexcept nogil:
    """Skip whitespace (only when ``ws`` allows it)."""
    # bit i of 0x100002600 set for the bytes i = '\t', '\n', '\r', ' ' (all <= 32)
    if ws:
        while p < end and <unsigned char>p[0] <= 32 and (0x100002600ULL >> <unsigned char>p[0]) & 1:
            p += 1
    return p


cdef inline bint js_eq(const char* s, Py_ssize_t n, const char* text, Py_ssize_t text_len) noexcept nogil:
    return n == text_len and memcmp(s, text, n) == 0


cdef inline bint js_is(const char* s, Py_ssize_t n, const char* word) noexcept nogil:
    """s[:n] is the NUL-terminated ``word`` (a literal: its length folds at compile time)."""
    return js_eq(s, n, word, <Py_ssize_t>strlen(word))


cdef inline const char* js_string(const char* p, const char* end, const char** s,
                                  Py_ssize_t* n) noexcept nogil:
    """A string of printable ASCII without escapes; s/n receive its content."""
    cdef const char* start
    cdef unsigned char c
    if p >= end or p[0] != c'"':
        return NULL
    p += 1
    start = p
    while p < end:
        c = <unsigned char>p[0]
        if c == 34:  # closing quote
            s[0] = start
            n[0] = p - start
            return p + 1
        if c < 32 or c > 126 or c == 92:  # control byte, DEL / non-ASCII, backslash
            return NULL
        p += 1
    return NULL


cdef inline const char* js_integer(const char* p, const char* end, long long* out) noexcept nogil:
    """A canonical JSON integer of at most 18 digits (fits int64, re-serialises to the same bytes)."""
    cdef bint negative = p < end and p[0] == c'-'
    cdef const char* digits
    cdef long long v = 0
    cdef unsigned int d
    p += negative
    digits = p
    while p < end:
        d = <unsigned int>(<unsigned char>p[0]) - 48u
        if d > 9u:
            break
        if p - digits == 18:
            return NULL
        v = v * 10 + d
        p += 1
    if p == digits or (digits[0] == c'0' and (p - digits > 1 or negative)):
        return NULL  # no digit, a leading zero, or "-0"
    if p < end and (p[0] == c'.' or p[0] == c'e' or p[0] == c'E'):
        return NULL
    out[0] = -v if negative else v
    return p


cdef inline const char* js_literal(const char* p, const char* end, const char* word) noexcept nogil:
    """The bare word (true / false / null)."""
    cdef Py_ssize_t n = <Py_ssize_t>strlen(word)
    if end - p < n or memcmp(p, word, n) != 0:
        return NULL
    return p + n


cdef inline const char* js_key(const char* p, const char* end, const char** k, Py_ssize_t* kn,
                               bint ws) noexcept nogil:
    """An object key and its colon; returns the start of the value."""
    p = js_string(p, end, k, kn)
    if p == NULL:
        return NULL
    p = js_ws(p, end, ws)
    if p >= end or p[0] != c':':
        return NULL
    return js_ws(p + 1, end, ws)


cdef inline const char* js_open(const char* p, const char* end, char open, bint ws) noexcept nogil:
    """``open`` ('{' or '['); returns the first member (or the closer of an empty container)."""
    if p >= end or p[0] != open:
        return NULL
    return js_ws(p + 1, end, ws)


cdef inline const char* js_empty(const char* p, const char* end, char close, bint* done) noexcept nogil:
    """Right after js_open where an empty container is allowed: at ``close``, done = True and
    the position past it; otherwise done = False and p.  (Where a container may not be empty,
    callers skip this: the first member's reader refuses the closer.)"""
    done[0] = p < end and p[0] == close
    return p + 1 if done[0] else p


cdef inline const char* js_next(const char* p, const char* end, char close, bint* done,
                                bint ws) noexcept nogil:
    """After a member: ',' (done = False, returns the next member) or ``close`` (done = True,
    returns the position after it).  p must not be NULL: callers check each reader's result
    where they call it (a check here would run again on every member)."""
    p = js_ws(p, end, ws)
    if p >= end:
        return NULL
    if p[0] == close:
        done[0] = True
        return p + 1
    if p[0] != c',':
        return NULL
    done[0] = False
    return js_ws(p + 1, end, ws)


cdef inline const char* js_scalar(const char* p, const char* end) noexcept nogil:
    """Any scalar of the subset: string, integer, true, false or null."""
    cdef const char* s
    cdef Py_ssize_t n
    cdef long long ignored
    if p >= end:
        return NULL
    if p[0] == c'"':
        return js_string(p, end, &s, &n)
    if p[0] == c't':
        return js_literal(p, end, b"true")
    if p[0] == c'f':
        return js_literal(p, end, b"false")
    if p[0] == c'n':
        return js_literal(p, end, b"null")
    return js_integer(p, end, &ignored)


cdef inline const char* js_skip_value(const char* p, const char* end, bint ws) noexcept nogil:
    """A value the scanner does not read: a scalar or a flat array of scalars."""
    cdef bint done
    if p >= end or p[0] != c'[':
        return js_scalar(p, end)
    p = js_empty(js_open(p, end, c'[', ws), end, c']', &done)
    while not done:
        p = js_scalar(p, end)
        if p == NULL:
            return NULL
        p = js_next(p, end, c']', &done, ws)
        if p == NULL:
            return NULL
    return p
