# cython: language_level=3
"""Header-only helpers: decimal text <-> integer ticks / double, in C.

Grammar accepted for a number: ``[+-]?[0-9]+(\\.[0-9]+)?`` (ASCII only, no spaces, no
exponent).  ``nan``, ``snan``, ``inf`` and ``infinity`` (any case, optional sign) are
recognised separately so callers can count them as non-finite instead of malformed.
"""

from libc.stdlib cimport strtod
from cpython.ref cimport PyObject
from libc.string cimport memcpy

cdef extern from "Python.h":
    # Borrowed-reference C-API on PyObject*, so parse loops stay free of refcounting.
    # Prefixed Cython names avoid clashing with cpython.* cimports elsewhere.
    PyObject* c_dict_get "PyDict_GetItem"(PyObject* mapping, PyObject* key)
    bint c_is_dict "PyDict_Check"(PyObject* obj)
    bint c_is_list "PyList_Check"(PyObject* obj)
    Py_ssize_t c_list_len "PyList_GET_SIZE"(PyObject* obj)
    PyObject* c_list_item "PyList_GET_ITEM"(PyObject* obj, Py_ssize_t i)
    bint c_is_str "PyUnicode_Check"(PyObject* obj)
    bint c_str_is_ascii "PyUnicode_IS_ASCII"(PyObject* obj)
    const char* c_str_utf8 "PyUnicode_AsUTF8AndSize"(PyObject* obj, Py_ssize_t* size)
    int c_str_compare "PyUnicode_Compare"(PyObject* a, PyObject* b)
    bint c_is_int "PyLong_CheckExact"(PyObject* obj)
    long long c_int_as_ll "PyLong_AsLongLong"(PyObject* obj)
    PyObject* c_err_occurred "PyErr_Occurred"()
    void c_err_clear "PyErr_Clear"()
    bint c_dict_next "PyDict_Next"(PyObject* mapping, Py_ssize_t* pos, PyObject** key, PyObject** value)
    bint c_str_is_compact_ascii "PyUnicode_IS_COMPACT_ASCII"(PyObject* obj)
    void* c_str_data "PyUnicode_DATA"(PyObject* obj)
    Py_ssize_t c_str_len "PyUnicode_GET_LENGTH"(PyObject* obj)
    bint c_is_str_exact "PyUnicode_CheckExact"(PyObject* obj)
    bint c_is_bytes_exact "PyBytes_CheckExact"(PyObject* obj)
    char* c_bytes_data "PyBytes_AS_STRING"(PyObject* obj)
    Py_ssize_t c_bytes_len "PyBytes_GET_SIZE"(PyObject* obj)


cdef enum:
    DEC_OK = 0
    DEC_BAD = 1          # not a decimal number (or not a str)
    DEC_NON_FINITE = 2   # nan / inf spelled out
    DEC_OFF_GRID = 3     # non-zero digits beyond the allowed decimals
    DEC_OVERFLOW = 4     # does not fit an int64 count of units

cdef extern from *:
    """
    #ifndef HLFAST_DECIMAL_TABLES
    #define HLFAST_DECIMAL_TABLES
    /* Exact powers of ten as doubles (exact up to 1e22). */
    static const double DEC_POW10_F[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    #endif
    """
    const double* DEC_POW10_F


cdef inline char dec_lower(char c) noexcept nogil:
    if c >= c'A' and c <= c'Z':
        return c + 32
    return c

cdef inline bint dec_word_is(const char* s, Py_ssize_t n, const char* word, Py_ssize_t wn) noexcept nogil:
    cdef Py_ssize_t i
    if n != wn:
        return False
    for i in range(n):
        if dec_lower(s[i]) != word[i]:
            return False
    return True

cdef inline bint dec_is_non_finite_word(const char* s, Py_ssize_t n) noexcept nogil:
    """True for nan/snan/inf/infinity in any case with an optional sign."""
    if n > 0 and (s[0] == c'+' or s[0] == c'-'):
        s += 1
        n -= 1
    return (dec_word_is(s, n, b"nan", 3) or dec_word_is(s, n, b"snan", 4)
            or dec_word_is(s, n, b"inf", 3) or dec_word_is(s, n, b"infinity", 8))

cdef inline int dec_parse_scaled_checked(const char* s, Py_ssize_t n, int decimals,
                                         long long* out) noexcept nogil:
    """dec_parse_scaled with an overflow check on every digit (long inputs)."""
    cdef Py_ssize_t i = 0
    cdef bint negative = False
    cdef long long v = 0
    cdef int d
    cdef int frac_used = 0
    cdef Py_ssize_t int_digits = 0
    cdef Py_ssize_t frac_digits = 0
    cdef bint off_grid = False
    if n <= 0:
        return DEC_BAD
    if s[0] == c'+' or s[0] == c'-':
        negative = s[0] == c'-'
        i = 1
    while i < n and s[i] >= c'0' and s[i] <= c'9':
        d = s[i] - c'0'
        if v > (9223372036854775807LL - d) // 10:
            return DEC_OVERFLOW
        v = v * 10 + d
        int_digits += 1
        i += 1
    if int_digits == 0:
        return DEC_NON_FINITE if dec_is_non_finite_word(s, n) else DEC_BAD
    if i < n:
        if s[i] != c'.':
            return DEC_BAD
        i += 1
        while i < n and s[i] >= c'0' and s[i] <= c'9':
            d = s[i] - c'0'
            if frac_used < decimals:
                if v > (9223372036854775807LL - d) // 10:
                    return DEC_OVERFLOW
                v = v * 10 + d
                frac_used += 1
            elif d != 0:
                off_grid = True
            frac_digits += 1
            i += 1
        if frac_digits == 0 or i != n:
            return DEC_BAD
    if off_grid:
        return DEC_OFF_GRID
    while frac_used < decimals:
        if v > 922337203685477580LL:
            return DEC_OVERFLOW
        v *= 10
        frac_used += 1
    out[0] = -v if negative else v
    return DEC_OK

cdef inline int dec_parse_scaled(const char* s, Py_ssize_t n, int decimals, long long* out) noexcept nogil:
    """Parse decimal text into an exact count of 10**-decimals units (e.g. price ticks).

    Trailing zeros beyond ``decimals`` are accepted ("98450.50" with 1 decimal);
    any other digit there is DEC_OFF_GRID.  ``out`` is written only on DEC_OK.
    Inputs with more than 18 digit positions are re-parsed with overflow checks.
    """
    cdef Py_ssize_t i = 0
    cdef unsigned long long v = 0
    cdef unsigned int d
    cdef int frac_used = 0
    cdef Py_ssize_t int_digits = 0
    cdef Py_ssize_t frac_digits = 0
    cdef bint off_grid = False
    if n <= 0:
        return DEC_BAD
    if s[0] == c'+' or s[0] == c'-':
        i = 1
    while i < n:
        d = <unsigned int>(s[i] - c'0')
        if d > 9:
            break
        v = v * 10 + d
        int_digits += 1
        i += 1
    if int_digits == 0:
        return DEC_NON_FINITE if dec_is_non_finite_word(s, n) else DEC_BAD
    if int_digits + decimals > 18:
        return dec_parse_scaled_checked(s, n, decimals, out)
    if i < n:
        if s[i] != c'.':
            return DEC_BAD
        i += 1
        while i < n:
            d = <unsigned int>(s[i] - c'0')
            if d > 9:
                break
            if frac_used < decimals:
                v = v * 10 + d
                frac_used += 1
            elif d != 0:
                off_grid = True
            frac_digits += 1
            i += 1
        if frac_digits == 0 or i != n:
            return DEC_BAD
    if off_grid:
        return DEC_OFF_GRID
    while frac_used < decimals:
        v *= 10
        frac_used += 1
    out[0] = -<long long>v if s[0] == c'-' else <long long>v
    return DEC_OK


cdef inline int dec_parse_double(const char* s, Py_ssize_t n, double* out) noexcept nogil:
    """Parse decimal text into the correctly rounded double (same value as float(text)).

    Fast path: <= 19 significant digits with mantissa < 2**53 and <= 22 decimals is one
    exact division; otherwise strtod on a NUL-terminated copy.
    """
    cdef Py_ssize_t i = 0
    cdef bint negative = False
    cdef unsigned long long m = 0
    cdef int sig = 0
    cdef Py_ssize_t int_digits = 0
    cdef Py_ssize_t frac_digits = 0
    cdef bint exact = True
    cdef char[128] buf
    cdef char* end
    cdef double v
    if n <= 0:
        return DEC_BAD
    if s[0] == c'+' or s[0] == c'-':
        negative = s[0] == c'-'
        i = 1
    while i < n and s[i] >= c'0' and s[i] <= c'9':
        if m != 0 or s[i] != c'0':
            if sig < 19:
                m = m * 10 + <unsigned long long>(s[i] - c'0')
                sig += 1
            else:
                exact = False
        int_digits += 1
        i += 1
    if int_digits == 0:
        return DEC_NON_FINITE if dec_is_non_finite_word(s, n) else DEC_BAD
    if i < n:
        if s[i] != c'.':
            return DEC_BAD
        i += 1
        while i < n and s[i] >= c'0' and s[i] <= c'9':
            if m != 0 or s[i] != c'0':
                if sig < 19:
                    m = m * 10 + <unsigned long long>(s[i] - c'0')
                    sig += 1
                else:
                    exact = False
            frac_digits += 1
            i += 1
        if frac_digits == 0 or i != n:
            return DEC_BAD
    if exact and m <= 9007199254740992ULL and frac_digits <= 22:
        v = <double>m / DEC_POW10_F[frac_digits]
    else:
        if n >= 128:
            return DEC_OVERFLOW
        # strtod sees the sign itself (correctly rounded in glibc).
        memcpy(buf, s, n)
        buf[n] = 0
        out[0] = strtod(buf, &end)
        return DEC_OK
    out[0] = -v if negative else v
    return DEC_OK

cdef inline int dec_text_of(PyObject* obj, const char** text, Py_ssize_t* size) noexcept:
    """Borrow the ASCII UTF-8 buffer of a str object; DEC_BAD for anything else."""
    if not c_is_str(obj):
        return DEC_BAD
    if c_str_is_compact_ascii(obj):
        # Compact ASCII: the characters are the UTF-8 buffer, no call needed.
        text[0] = <const char*>c_str_data(obj)
        size[0] = c_str_len(obj)
        return DEC_OK
    if not c_str_is_ascii(obj):
        return DEC_BAD
    text[0] = c_str_utf8(obj, size)
    if text[0] == NULL:
        c_err_clear()
        return DEC_BAD
    return DEC_OK

cdef inline int dec_obj_scaled(PyObject* obj, int decimals, long long* out) noexcept:
    cdef const char* text
    cdef Py_ssize_t size
    if dec_text_of(obj, &text, &size) != DEC_OK:
        return DEC_BAD
    return dec_parse_scaled(text, size, decimals, out)

cdef inline int dec_obj_double(PyObject* obj, double* out) noexcept:
    cdef const char* text
    cdef Py_ssize_t size
    if dec_text_of(obj, &text, &size) != DEC_OK:
        return DEC_BAD
    return dec_parse_double(text, size, out)

cdef inline int dec_obj_int64(PyObject* obj, long long* out) noexcept:
    """Exact Python int -> int64 (bool and float are DEC_BAD, too large is DEC_OVERFLOW)."""
    cdef long long v
    if not c_is_int(obj):
        return DEC_BAD
    v = c_int_as_ll(obj)
    if v == -1 and c_err_occurred() != NULL:
        c_err_clear()
        return DEC_OVERFLOW
    out[0] = v
    return DEC_OK

cdef inline Py_ssize_t dec_format_scaled(long long v, int decimals, char* buf) noexcept nogil:
    """Write v * 10**-decimals as the shortest plain decimal text (no exponent, no
    trailing zeros, no trailing dot: 1062170 with 1 decimal -> "106217", the form the
    exchange's float_to_wire produces).  ``buf`` needs 24 bytes; returns the length
    (not NUL-terminated)."""
    cdef char[24] rev
    cdef Py_ssize_t n = 0
    cdef Py_ssize_t out_len = 0
    cdef unsigned long long u
    cdef int frac = decimals
    if v < 0:
        buf[0] = c'-'
        out_len = 1
        u = <unsigned long long>(-(v + 1)) + 1
    else:
        u = <unsigned long long>v
    # Drop trailing zeros of the fractional part.
    while frac > 0 and u % 10 == 0 and u != 0:
        u //= 10
        frac -= 1
    if u == 0:
        frac = 0
    while True:
        rev[n] = <char>(c'0' + <int>(u % 10))
        u //= 10
        n += 1
        if u == 0 and n > frac:
            break
    while n > 0:
        n -= 1
        buf[out_len] = rev[n]
        out_len += 1
        if n == frac and frac > 0:
            buf[out_len] = c'.'
            out_len += 1
    return out_len


cdef inline bint dec_str_equal(PyObject* obj, PyObject* expected) noexcept:
    """obj is a str equal to expected (a str); False for any other type."""
    if obj == expected:
        return True
    if not c_is_str(obj):
        return False
    return c_str_compare(obj, expected) == 0
