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

Fast forms (``js_at``, ``js_quoted_*``): fused readers for the compact shapes real frames have.
They return the same position and value as the general readers whenever they return non-NULL;
NULL from them means only "not this simple shape", and the caller then runs the general readers
from the same position, which decide.  So they change speed, never what is accepted.
"""

cimport cython
from libc.string cimport memcmp, memcpy, strlen

from hlfast.decimal cimport DEC_POW10_F

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


# ---- fast forms ----------------------------------------------------------------------------------
cdef inline bint js_at(const char* p, const char* end, const char* lit, Py_ssize_t n) noexcept nogil:
    """The bytes at p are the literal lit[:n] (n a constant: the compiler turns this into word compares)."""
    return end - p >= n and memcmp(p, lit, n) == 0


cdef inline bint js_word_plain(unsigned long long w) noexcept nogil:
    """No byte of the 8-byte word w ends a subset string or leaves it: none is '"', '\\', < 32 or >= 127.

    Bytewise tests on the low 7 bits, which cannot carry into the next byte; bytes >= 128 are
    caught by their own high bit."""
    cdef unsigned long long low7 = w & 0x7F7F7F7F7F7F7F7FULL
    cdef unsigned long long marks = w | (low7 + 0x0101010101010101ULL)          # >= 127
    marks |= ~(low7 + 0x6060606060606060ULL)                                    # < 32
    marks |= ~((low7 ^ 0x2222222222222222ULL) + 0x7F7F7F7F7F7F7F7FULL)          # '"'
    marks |= ~((low7 ^ 0x5C5C5C5C5C5C5C5CULL) + 0x7F7F7F7F7F7F7F7FULL)          # backslash
    return marks & 0x8080808080808080ULL == 0


cdef inline const char* js_string_long(const char* p, const char* end, const char** s,
                                       Py_ssize_t* n) noexcept nogil:
    """js_string for strings that are usually long (hashes, addresses): 8 bytes a step while no
    byte needs a look, then byte by byte.  Same result as js_string on every input."""
    cdef const char* start
    cdef unsigned long long w
    cdef unsigned char c
    if p >= end or p[0] != c'"':
        return NULL
    p += 1
    start = p
    while end - p >= 8:
        memcpy(&w, p, 8)
        if not js_word_plain(w):
            break
        p += 8
    while p < end:
        c = <unsigned char>p[0]
        if c == 34:
            s[0] = start
            n[0] = p - start
            return p + 1
        if c < 32 or c > 126 or c == 92:
            return NULL
        p += 1
    return NULL


cdef inline const char* js_quoted_is(const char* p, const char* end, const char* text,
                                     Py_ssize_t n) noexcept nogil:
    """p starts a subset string whose content is text[:n]: same answer as js_string + js_eq."""
    cdef Py_ssize_t i
    cdef unsigned char c
    if end - p < n + 2 or p[0] != c'"' or p[n + 1] != c'"':
        return NULL
    for i in range(n):
        c = <unsigned char>p[i + 1]
        if c != <unsigned char>text[i] or c < 32 or c > 126 or c == 92 or c == 34:
            return NULL
    return p + n + 2


cdef inline const char* js_digits(const char* p, const char* end, unsigned long long* m) noexcept nogil:
    """The run of ASCII digits at p, appended to m (m = 10·m + d each); returns the first byte after it."""
    cdef unsigned int d
    while p < end:
        d = <unsigned int>(<unsigned char>p[0]) - 48u
        if d > 9u:
            break
        m[0] = m[0] * 10u + d
        p += 1
    return p


cdef inline const char* js_quoted_scaled(const char* p, const char* end, int decimals,
                                         long long* out) noexcept nogil:
    """Fast form of js_string + dec_parse_scaled: "<digits>[.<digits>]" with at most 18 - decimals
    integer digits and no non-zero digit past ``decimals``, read in the pass that finds the quote."""
    cdef unsigned long long v = 0
    cdef unsigned int d
    cdef const char* digits
    cdef int frac_used = 0
    if p >= end or p[0] != c'"' or decimals < 0:
        return NULL
    digits = p + 1
    p = js_digits(digits, end, &v)
    if p == digits or (p - digits) + decimals > 18 or p >= end:
        return NULL
    if p[0] == c'.':
        p += 1
        digits = p
        while p < end:
            d = <unsigned int>(<unsigned char>p[0]) - 48u
            if d > 9u:
                break
            if frac_used < decimals:
                v = v * 10u + d
                frac_used += 1
            elif d != 0u:
                return NULL  # off the grid: the general reader says so
            p += 1
        if p == digits or p >= end:
            return NULL
    if p[0] != c'"':
        return NULL
    while frac_used < decimals:
        v *= 10u
        frac_used += 1
    out[0] = <long long>v
    return p + 1


@cython.cdivision(True)  # the divisor is a power of ten: no zero check in the hot path
cdef inline const char* js_quoted_double(const char* p, const char* end, double* out) noexcept nogil:
    """Fast form of js_string + dec_parse_double: "<digits>[.<digits>]" of at most 19 digits whose
    digits as an integer m are <= 2**53, i.e. exactly dec_parse_double's one-division case."""
    cdef unsigned long long m = 0
    cdef const char* digits
    cdef Py_ssize_t int_digits, frac_digits = 0
    if p >= end or p[0] != c'"':
        return NULL
    digits = p + 1
    p = js_digits(digits, end, &m)
    int_digits = p - digits
    if int_digits == 0 or p >= end:
        return NULL
    if p[0] == c'.':
        digits = p + 1
        p = js_digits(digits, end, &m)
        frac_digits = p - digits
        if frac_digits == 0 or p >= end:
            return NULL
    if p[0] != c'"' or int_digits + frac_digits > 19 or m > 9007199254740992ULL:
        return NULL
    out[0] = <double>m / DEC_POW10_F[frac_digits]
    return p + 1
