# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hot pieces of action signing in C: keccak256, the L1 action digest, wire number text, msgpack of the
engine's actions straight from their arrays, and libsecp256k1 signing without the Python wrapper.

The Python fallbacks in hlfast.signer produce the same bytes; tests check both against the SDK.
"""
import os

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.long cimport PyLong_CheckExact
from cpython.unicode cimport PyUnicode_CheckExact, PyUnicode_DecodeASCII
from libc.math cimport rint
from libc.stdint cimport int64_t, uint8_t, uint64_t, uintptr_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

from hlfast.decimal cimport dec_format_scaled

cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    # declared without an exception clause: an out-of-range int sets *overflow and raises nothing
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow)

cdef uint64_t ROUND_CONSTANTS[24]
ROUND_CONSTANTS[:] = [
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
]


# ---------------------------------------------------------------------------------- keccak256
cdef inline uint64_t _rotl(uint64_t x, int n) noexcept nogil:
    return (x << n) | (x >> (64 - n))


cdef void _keccak_f(uint64_t* st) noexcept nogil:
    # keccak-f[1600] with the 25 lanes in locals (lane x + 5y); theta, rho+pi, chi, iota per round
    cdef uint64_t a0 = st[0], a1 = st[1], a2 = st[2], a3 = st[3], a4 = st[4]
    cdef uint64_t a5 = st[5], a6 = st[6], a7 = st[7], a8 = st[8], a9 = st[9]
    cdef uint64_t a10 = st[10], a11 = st[11], a12 = st[12], a13 = st[13], a14 = st[14]
    cdef uint64_t a15 = st[15], a16 = st[16], a17 = st[17], a18 = st[18], a19 = st[19]
    cdef uint64_t a20 = st[20], a21 = st[21], a22 = st[22], a23 = st[23], a24 = st[24]
    cdef uint64_t b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12
    cdef uint64_t b13, b14, b15, b16, b17, b18, b19, b20, b21, b22, b23, b24
    cdef uint64_t c0, c1, c2, c3, c4, d0, d1, d2, d3, d4
    cdef int rnd
    for rnd in range(24):
        c0 = a0 ^ a5 ^ a10 ^ a15 ^ a20
        c1 = a1 ^ a6 ^ a11 ^ a16 ^ a21
        c2 = a2 ^ a7 ^ a12 ^ a17 ^ a22
        c3 = a3 ^ a8 ^ a13 ^ a18 ^ a23
        c4 = a4 ^ a9 ^ a14 ^ a19 ^ a24
        d0 = c4 ^ _rotl(c1, 1)
        d1 = c0 ^ _rotl(c2, 1)
        d2 = c1 ^ _rotl(c3, 1)
        d3 = c2 ^ _rotl(c4, 1)
        d4 = c3 ^ _rotl(c0, 1)
        b0 = a0 ^ d0
        b16 = _rotl(a5 ^ d0, 36)
        b7 = _rotl(a10 ^ d0, 3)
        b23 = _rotl(a15 ^ d0, 41)
        b14 = _rotl(a20 ^ d0, 18)
        b10 = _rotl(a1 ^ d1, 1)
        b1 = _rotl(a6 ^ d1, 44)
        b17 = _rotl(a11 ^ d1, 10)
        b8 = _rotl(a16 ^ d1, 45)
        b24 = _rotl(a21 ^ d1, 2)
        b20 = _rotl(a2 ^ d2, 62)
        b11 = _rotl(a7 ^ d2, 6)
        b2 = _rotl(a12 ^ d2, 43)
        b18 = _rotl(a17 ^ d2, 15)
        b9 = _rotl(a22 ^ d2, 61)
        b5 = _rotl(a3 ^ d3, 28)
        b21 = _rotl(a8 ^ d3, 55)
        b12 = _rotl(a13 ^ d3, 25)
        b3 = _rotl(a18 ^ d3, 21)
        b19 = _rotl(a23 ^ d3, 56)
        b15 = _rotl(a4 ^ d4, 27)
        b6 = _rotl(a9 ^ d4, 20)
        b22 = _rotl(a14 ^ d4, 39)
        b13 = _rotl(a19 ^ d4, 8)
        b4 = _rotl(a24 ^ d4, 14)
        a0 = b0 ^ (~b1 & b2)
        a1 = b1 ^ (~b2 & b3)
        a2 = b2 ^ (~b3 & b4)
        a3 = b3 ^ (~b4 & b0)
        a4 = b4 ^ (~b0 & b1)
        a5 = b5 ^ (~b6 & b7)
        a6 = b6 ^ (~b7 & b8)
        a7 = b7 ^ (~b8 & b9)
        a8 = b8 ^ (~b9 & b5)
        a9 = b9 ^ (~b5 & b6)
        a10 = b10 ^ (~b11 & b12)
        a11 = b11 ^ (~b12 & b13)
        a12 = b12 ^ (~b13 & b14)
        a13 = b13 ^ (~b14 & b10)
        a14 = b14 ^ (~b10 & b11)
        a15 = b15 ^ (~b16 & b17)
        a16 = b16 ^ (~b17 & b18)
        a17 = b17 ^ (~b18 & b19)
        a18 = b18 ^ (~b19 & b15)
        a19 = b19 ^ (~b15 & b16)
        a20 = b20 ^ (~b21 & b22)
        a21 = b21 ^ (~b22 & b23)
        a22 = b22 ^ (~b23 & b24)
        a23 = b23 ^ (~b24 & b20)
        a24 = b24 ^ (~b20 & b21)
        a0 ^= ROUND_CONSTANTS[rnd]

    st[0] = a0
    st[1] = a1
    st[2] = a2
    st[3] = a3
    st[4] = a4
    st[5] = a5
    st[6] = a6
    st[7] = a7
    st[8] = a8
    st[9] = a9
    st[10] = a10
    st[11] = a11
    st[12] = a12
    st[13] = a13
    st[14] = a14
    st[15] = a15
    st[16] = a16
    st[17] = a17
    st[18] = a18
    st[19] = a19
    st[20] = a20
    st[21] = a21
    st[22] = a22
    st[23] = a23
    st[24] = a24


cdef inline uint64_t _load_le64(const uint8_t* p) noexcept nogil:
    # byte-wise little-endian load: host-order independent, compiled to one load on x86
    return ((<uint64_t>p[0]) | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16) | (<uint64_t>p[3] << 24)
            | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40) | (<uint64_t>p[6] << 48)
            | (<uint64_t>p[7] << 56))


cdef inline void _absorb_block(uint64_t* st, const uint8_t* block) noexcept nogil:
    cdef int i
    for i in range(RATE // 8):
        st[i] ^= _load_le64(block + 8 * i)
    _keccak_f(st)


cdef void sponge_init(KeccakSponge* sp) noexcept nogil:
    memset(sp.st, 0, sizeof(sp.st))
    sp.fill = 0


cdef void sponge_absorb(KeccakSponge* sp, const uint8_t* data, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t take
    if sp.fill:
        take = RATE - sp.fill
        if take > n:
            take = n
        memcpy(sp.block + sp.fill, data, take)
        sp.fill += take
        data += take
        n -= take
        if sp.fill < RATE:
            return
        _absorb_block(sp.st, sp.block)
        sp.fill = 0
    while n >= RATE:
        _absorb_block(sp.st, data)
        data += RATE
        n -= RATE
    if n:
        memcpy(sp.block, data, n)
        sp.fill = n


cdef void sponge_finish(KeccakSponge* sp, uint8_t* out) noexcept nogil:
    cdef int i
    memset(sp.block + sp.fill, 0, RATE - sp.fill)
    sp.block[sp.fill] ^= 0x01  # keccak padding (SHA3 would use 0x06)
    sp.block[RATE - 1] ^= 0x80
    _absorb_block(sp.st, sp.block)
    for i in range(32):
        out[i] = <uint8_t>(sp.st[i >> 3] >> (8 * (i & 7)))


cdef void keccak256_into(const uint8_t* data, Py_ssize_t n, uint8_t* out) noexcept nogil:
    cdef KeccakSponge sp
    sponge_init(&sp)
    sponge_absorb(&sp, data, n)
    sponge_finish(&sp, out)


def keccak256(bytes data not None) -> bytes:
    """keccak256 digest (32 bytes) of data."""
    cdef bytes result = PyBytes_FromStringAndSize(NULL, 32)
    keccak256_into(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                   <uint8_t*>PyBytes_AS_STRING(result))
    return result


# ---------------------------------------------------------------------------------- wire numbers
cdef Py_ssize_t format_ticks(int64_t ticks, int decimals, char* out) noexcept nogil:
    """ticks × 10^-decimals as the SDK's float_to_wire text (out ≥ 48 bytes); a whole-number
    scale (decimals ≤ 0) appends its zeros to a non-zero value."""
    cdef Py_ssize_t pos
    if decimals > 0 or ticks == 0:
        return dec_format_scaled(ticks, decimals if decimals > 0 else 0, out)
    pos = dec_format_scaled(ticks, 0, out)
    memset(out + pos, 48, -decimals)
    return pos - decimals


def ticks_to_wire(int64_t ticks, int decimals) -> str:
    """Same text as hlfast.signer.ticks_to_wire (the SDK's float_to_wire of ticks × 10^-decimals)."""
    cdef char buf[48]
    if decimals > 18 or decimals < -18:
        raise ValueError("decimals must lie in -18..18")
    cdef Py_ssize_t n = format_ticks(ticks, decimals, buf)
    return PyUnicode_DecodeASCII(buf, n, NULL)


# ---------------------------------------------------------------------------------- L1 digest
cdef uint8_t DOMAIN_SEPARATOR[32]
DOMAIN_SEPARATOR[:] = list(bytes.fromhex("d79297fcdf2ffcd4ae223d01edaa2ba214ff8f401d7c9300d995d17c82aa4040"))
cdef uint8_t AGENT_TYPEHASH[32]
AGENT_TYPEHASH[:] = list(bytes.fromhex("26f05c2f7239b6983075e58321292d77b3aa173d19b27257ac96ab362570f508"))
cdef uint8_t SOURCE_A_HASH[32]
cdef uint8_t SOURCE_B_HASH[32]
keccak256_into(<const uint8_t*>b"a", 1, SOURCE_A_HASH)
keccak256_into(<const uint8_t*>b"b", 1, SOURCE_B_HASH)


cdef inline void _put_u64_be(uint8_t* out, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        out[7 - i] = <uint8_t>(v >> (8 * i))


cdef void l1_digest_into(const uint8_t* packed, Py_ssize_t n_packed, uint64_t nonce,
                         const uint8_t* vault_tail, Py_ssize_t n_vault, bint has_expiry,
                         uint64_t expires_after, bint is_mainnet, uint8_t* out) noexcept nogil:
    cdef KeccakSponge sp
    cdef uint8_t tail[9]
    cdef uint8_t struct_input[96]
    cdef uint8_t final_input[66]
    sponge_init(&sp)
    sponge_absorb(&sp, packed, n_packed)
    _put_u64_be(tail, nonce)
    sponge_absorb(&sp, tail, 8)
    sponge_absorb(&sp, vault_tail, n_vault)
    if has_expiry:
        tail[0] = 0
        _put_u64_be(tail + 1, expires_after)
        sponge_absorb(&sp, tail, 9)
    memcpy(struct_input, AGENT_TYPEHASH, 32)
    if is_mainnet:
        memcpy(struct_input + 32, SOURCE_A_HASH, 32)
    else:
        memcpy(struct_input + 32, SOURCE_B_HASH, 32)
    sponge_finish(&sp, struct_input + 64)  # the connection id
    final_input[0] = 0x19
    final_input[1] = 0x01
    memcpy(final_input + 2, DOMAIN_SEPARATOR, 32)
    keccak256_into(struct_input, 96, final_input + 34)
    keccak256_into(final_input, 66, out)


def l1_digest(bytes packed_action not None, uint64_t nonce, bytes vault_tail not None, expires_after,
              bint is_mainnet) -> bytes:
    """EIP-712 digest of an L1 action: packed_action is msgpack(action), vault_tail is b"\\x00"
    or b"\\x01" + 20 address bytes, expires_after an ms time or None."""
    cdef bytes result = PyBytes_FromStringAndSize(NULL, 32)
    cdef uint64_t expiry = 0 if expires_after is None else <uint64_t>expires_after
    l1_digest_into(<const uint8_t*>PyBytes_AS_STRING(packed_action), PyBytes_GET_SIZE(packed_action), nonce,
                   <const uint8_t*>PyBytes_AS_STRING(vault_tail), PyBytes_GET_SIZE(vault_tail),
                   expires_after is not None, expiry, is_mainnet, <uint8_t*>PyBytes_AS_STRING(result))
    return result


# ---------------------------------------------------------------------------------- msgpack writers
# Encodings as msgpack-python's Packer chooses them (smallest form; unsigned forms for ints >= 0).
cdef inline Py_ssize_t _put_raw(uint8_t* out, const char* text, Py_ssize_t n) noexcept nogil:
    memcpy(out, text, n)
    return n


cdef inline Py_ssize_t _put_str_header(uint8_t* out, Py_ssize_t n) noexcept nogil:
    if n < 32:
        out[0] = <uint8_t>(0xA0 | n)
        return 1
    if n < 256:
        out[0] = 0xD9
        out[1] = <uint8_t>n
        return 2
    if n < 65536:
        out[0] = 0xDA
        out[1] = <uint8_t>(n >> 8)
        out[2] = <uint8_t>n
        return 3
    out[0] = 0xDB
    out[1] = <uint8_t>(n >> 24)
    out[2] = <uint8_t>(n >> 16)
    out[3] = <uint8_t>(n >> 8)
    out[4] = <uint8_t>n
    return 5


cdef inline Py_ssize_t _put_array_header(uint8_t* out, Py_ssize_t n) noexcept nogil:
    if n < 16:
        out[0] = <uint8_t>(0x90 | n)
        return 1
    out[0] = 0xDC  # n <= MAX_BATCH < 65536
    out[1] = <uint8_t>(n >> 8)
    out[2] = <uint8_t>n
    return 3


cdef Py_ssize_t pack_int(uint8_t* out, int64_t v) noexcept nogil:
    cdef uint64_t u
    if v >= 0:
        u = <uint64_t>v
        if u < 128:
            out[0] = <uint8_t>u
            return 1
        if u < 256:
            out[0] = 0xCC
            out[1] = <uint8_t>u
            return 2
        if u < 65536:
            out[0] = 0xCD
            out[1] = <uint8_t>(u >> 8)
            out[2] = <uint8_t>u
            return 3
        if u < 4294967296ULL:
            out[0] = 0xCE
            out[1] = <uint8_t>(u >> 24)
            out[2] = <uint8_t>(u >> 16)
            out[3] = <uint8_t>(u >> 8)
            out[4] = <uint8_t>u
            return 5
        out[0] = 0xCF
        _put_u64_be(out + 1, u)
        return 9
    if v >= -32:
        out[0] = <uint8_t>(<int>v & 0xFF)
        return 1
    if v >= -128:
        out[0] = 0xD0
        out[1] = <uint8_t>(<int>v & 0xFF)
        return 2
    if v >= -32768:
        out[0] = 0xD1
        out[1] = <uint8_t>((<int>v >> 8) & 0xFF)
        out[2] = <uint8_t>(<int>v & 0xFF)
        return 3
    u = <uint64_t>v
    if v >= -2147483648LL:
        out[0] = 0xD2
        out[1] = <uint8_t>(u >> 24)
        out[2] = <uint8_t>(u >> 16)
        out[3] = <uint8_t>(u >> 8)
        out[4] = <uint8_t>u
        return 5
    out[0] = 0xD3
    _put_u64_be(out + 1, u)
    return 9


def msgpack_int(int64_t value) -> bytes:
    """msgpack bytes of one integer as the packer kernel writes it (for tests)."""
    cdef uint8_t out[9]
    cdef Py_ssize_t n = pack_int(out, value)
    return PyBytes_FromStringAndSize(<char*>out, n)


cdef inline bint _as_int64(object value, int64_t* out):
    # exact Python ints that fit; anything else is left to the general path
    cdef int overflow = 0
    if not PyLong_CheckExact(value):
        return False
    out[0] = PyLong_AsLongLongAndOverflow(value, &overflow)
    return overflow == 0


cdef inline bint _ascii_str(object value):
    return PyUnicode_CheckExact(value) and PyUnicode_IS_COMPACT_ASCII(value)


cdef inline Py_ssize_t _put_ascii(uint8_t* out, object text):
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef Py_ssize_t h = _put_str_header(out, n)
    memcpy(out + h, PyUnicode_DATA(text), n)
    return h + n


cdef inline object _put_number(uint8_t* out, int64_t ticks, int decimals, Py_ssize_t* pos):
    # the text goes into the msgpack buffer (fixstr: always < 32 chars) and becomes the dict's str
    cdef Py_ssize_t n = format_ticks(ticks, decimals, <char*>(out + 1))
    out[0] = <uint8_t>(0xA0 | n)
    pos[0] += 1 + n
    return PyUnicode_DecodeASCII(<char*>(out + 1), n, NULL)


cdef int64_t POW10[19]
POW10[:] = [10 ** k for k in range(19)]

# the fixed msgpack pieces of the actions (map headers, keys, constant values)
cdef bytes K_ORDER_HEAD = b"\x83\xa4type\xa5order\xa6orders"
cdef bytes K_GROUPING_NA = b"\xa8grouping\xa2na"
cdef bytes K_MODIFY_HEAD = b"\x82\xa4type\xabbatchModify\xa8modifies"
cdef bytes K_MODIFY_ENTRY = b"\x82\xa3oid"
cdef bytes K_MODIFY_ORDER = b"\xa5order"
cdef bytes K_CANCEL_CLOID_HEAD = b"\x82\xa4type\xadcancelByCloid\xa7cancels"
cdef bytes K_CANCEL_CLOID_ENTRY = b"\x82\xa5asset"
cdef bytes K_CLOID = b"\xa5cloid"
cdef bytes K_CANCEL_HEAD = b"\x82\xa4type\xa6cancel\xa7cancels"
cdef bytes K_CANCEL_ENTRY = b"\x82\xa1a"
cdef bytes K_O = b"\xa1o"
cdef bytes K_WIRE_A = b"\xa1a"
cdef bytes K_WIRE_B = b"\xa1b"
cdef bytes K_WIRE_P = b"\xa1p"
cdef bytes K_WIRE_S = b"\xa1s"
cdef bytes K_WIRE_R = b"\xa1r"
cdef bytes K_WIRE_T = b"\xa1t\x81\xa5limit\x81\xa3tif"
cdef bytes K_WIRE_C = b"\xa1c"

cdef enum:
    ORDER_WIRE_MAX = 128  # bytes of an order wire without its cloid: keys, asset, two numbers, tif (<= 90)


cdef inline Py_ssize_t _put_bytes(uint8_t* out, bytes piece):
    cdef Py_ssize_t n = PyBytes_GET_SIZE(piece)
    memcpy(out, PyBytes_AS_STRING(piece), n)
    return n


@cython.final
cdef class ActionPacker:
    """msgpack bytes (exactly msgpack.packb's) and the action dict of the engine's actions, built in one
    pass from side/tick/size arrays. Every method returns ``(action, packed)``, or None when the input
    is not the plain kind (exact ints, floats, ASCII strs, n in 1..200) so the caller's general path
    can handle or refuse it.

    Items are read, type-checked and room reserved at the moment they are written, so the buffer stays
    in bounds even if a sequence changes while the action is built."""

    def __cinit__(self):
        self.capacity = 65536
        self.buffer = <uint8_t*>malloc(self.capacity)
        if self.buffer == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.buffer)

    cdef bint reserve(self, Py_ssize_t size) noexcept:
        cdef uint8_t* grown
        cdef Py_ssize_t capacity = self.capacity
        if size <= capacity:
            return True
        while capacity < size:
            capacity *= 2
        grown = <uint8_t*>realloc(self.buffer, capacity)
        if grown == NULL:
            return False
        self.buffer = grown
        self.capacity = capacity
        return True

    cdef int load_orders(self, object sides, object px_ticks, object sizes, object cloids, Py_ssize_t n,
                         int px_decimals, int sz_decimals, object tif):
        """Checks and converts the n orders' numbers into the C arrays; 0 if any needs the general path."""
        cdef Py_ssize_t i
        cdef int64_t side = 0, ticks = 0
        cdef double scaled
        cdef object size
        if n <= 0 or n > MAX_BATCH or not (0 <= px_decimals <= 8 and 0 <= sz_decimals <= 8):
            return 0
        if not (PyUnicode_CheckExact(tif) and (tif == "Alo" or tif == "Gtc" or tif == "Ioc")):
            return 0
        if len(sides) < n or len(px_ticks) < n or len(sizes) < n:
            return 0
        if cloids is not None and len(cloids) < n:
            return 0
        for i in range(n):
            if not _as_int64(sides[i], &side) or (side != 1 and side != -1):
                return 0
            if not _as_int64(px_ticks[i], &ticks) or ticks <= 0:
                return 0
            size = sizes[i]
            if not PyFloat_CheckExact(size):
                return 0
            scaled = rint(PyFloat_AS_DOUBLE(size) * <double>POW10[sz_decimals])  # ties to even, as round()
            if not (scaled >= 1.0 and scaled < 9.0e18):
                return 0
            self.sides[i] = <int>side
            self.ticks[i] = ticks
            self.lots[i] = <int64_t>scaled
        return 1

    cdef object order_wire(self, Py_ssize_t i, object asset, int64_t asset_i, object cloid, int px_decimals,
                           int sz_decimals, object tif, bint reduce_only, object order_type, Py_ssize_t* pos):
        """Writes order i's wire at pos and returns its dict (keys in the SDK's order a,b,p,s,r,t,c), or
        None if cloid is neither None nor an ASCII str; order_type is the {"limit": {"tif": tif}} dict
        shared by the orders of one action."""
        cdef uint8_t* out
        cdef Py_ssize_t p = pos[0]
        cdef object px_text, sz_text
        if cloid is not None and not _ascii_str(cloid):
            return None
        if not self.reserve(p + ORDER_WIRE_MAX + (0 if cloid is None else 8 + PyUnicode_GET_LENGTH(cloid))):
            return None
        out = self.buffer
        out[p] = 0x87 if cloid is not None else 0x86
        p += 1
        p += _put_bytes(out + p, K_WIRE_A)
        p += pack_int(out + p, asset_i)
        p += _put_bytes(out + p, K_WIRE_B)
        out[p] = 0xC3 if self.sides[i] == 1 else 0xC2
        p += 1
        p += _put_bytes(out + p, K_WIRE_P)
        px_text = _put_number(out + p, self.ticks[i], px_decimals, &p)
        p += _put_bytes(out + p, K_WIRE_S)
        sz_text = _put_number(out + p, self.lots[i], sz_decimals, &p)
        p += _put_bytes(out + p, K_WIRE_R)
        out[p] = 0xC3 if reduce_only else 0xC2
        p += 1
        p += _put_bytes(out + p, K_WIRE_T)
        p += _put_ascii(out + p, tif)
        wire = {"a": asset, "b": self.sides[i] == 1, "p": px_text, "s": sz_text, "r": reduce_only,
                "t": order_type}
        if cloid is not None:
            p += _put_bytes(out + p, K_WIRE_C)
            p += _put_ascii(out + p, cloid)
            wire["c"] = cloid
        pos[0] = p
        return wire

    cpdef object order_action(self, object asset, object sides, object px_ticks, object sizes, object cloids,
                              Py_ssize_t n, int px_decimals, int sz_decimals, object tif, bint reduce_only):
        """{"type":"order","orders":[...],"grouping":"na"}: side ±1, price ticks of 10^-px_decimals,
        size in coin units (rounded to lots of 10^-sz_decimals), cloid str or None."""
        cdef int64_t asset_i = 0
        cdef Py_ssize_t pos = 0, i
        if not _as_int64(asset, &asset_i):
            return None
        if not self.load_orders(sides, px_ticks, sizes, cloids, n, px_decimals, sz_decimals, tif):
            return None
        pos += _put_bytes(self.buffer, K_ORDER_HEAD)
        pos += _put_array_header(self.buffer + pos, n)
        order_type = {"limit": {"tif": tif}}
        wires = [None] * n
        for i in range(n):
            wire = self.order_wire(i, asset, asset_i, None if cloids is None else cloids[i], px_decimals,
                                   sz_decimals, tif, reduce_only, order_type, &pos)
            if wire is None:
                return None
            wires[i] = wire
        if not self.reserve(pos + 16):
            return None
        pos += _put_bytes(self.buffer + pos, K_GROUPING_NA)
        action = {"type": "order", "orders": wires, "grouping": "na"}
        return action, PyBytes_FromStringAndSize(<char*>self.buffer, pos)

    cpdef object batch_modify_action(self, object asset, object targets, object sides, object px_ticks,
                                     object sizes, object cloids, Py_ssize_t n, int px_decimals,
                                     int sz_decimals, object tif, bint reduce_only):
        """{"type":"batchModify","modifies":[{"oid":target,"order":wire}...]}; a target is an oid (int)
        or a cloid (str)."""
        cdef int64_t asset_i = 0, oid = 0
        cdef Py_ssize_t pos = 0, i
        cdef object target
        if not _as_int64(asset, &asset_i):
            return None
        if not self.load_orders(sides, px_ticks, sizes, cloids, n, px_decimals, sz_decimals, tif):
            return None
        if len(targets) < n:
            return None
        pos += _put_bytes(self.buffer, K_MODIFY_HEAD)
        pos += _put_array_header(self.buffer + pos, n)
        order_type = {"limit": {"tif": tif}}
        modifies = [None] * n
        for i in range(n):
            target = targets[i]
            if _as_int64(target, &oid):  # room for the entry, the oid and the "order" key
                if not self.reserve(pos + 32):
                    return None
                pos += _put_bytes(self.buffer + pos, K_MODIFY_ENTRY)
                pos += pack_int(self.buffer + pos, oid)
            elif _ascii_str(target):
                if not self.reserve(pos + 32 + PyUnicode_GET_LENGTH(target)):
                    return None
                pos += _put_bytes(self.buffer + pos, K_MODIFY_ENTRY)
                pos += _put_ascii(self.buffer + pos, target)
            else:
                return None
            pos += _put_bytes(self.buffer + pos, K_MODIFY_ORDER)
            wire = self.order_wire(i, asset, asset_i, None if cloids is None else cloids[i], px_decimals,
                                   sz_decimals, tif, reduce_only, order_type, &pos)
            if wire is None:
                return None
            modifies[i] = {"oid": target, "order": wire}
        action = {"type": "batchModify", "modifies": modifies}
        return action, PyBytes_FromStringAndSize(<char*>self.buffer, pos)

    cpdef object cancel_by_cloid_action(self, object asset, object cloids, Py_ssize_t n):
        """{"type":"cancelByCloid","cancels":[{"asset":asset,"cloid":c}...]} for the first n cloids."""
        cdef int64_t asset_i = 0
        cdef Py_ssize_t pos = 0, i
        cdef object cloid
        if not _as_int64(asset, &asset_i) or n <= 0 or n > MAX_BATCH or len(cloids) < n:
            return None
        pos += _put_bytes(self.buffer, K_CANCEL_CLOID_HEAD)
        pos += _put_array_header(self.buffer + pos, n)
        cancels = [None] * n
        for i in range(n):
            cloid = cloids[i]
            if not _ascii_str(cloid) or not self.reserve(pos + 32 + PyUnicode_GET_LENGTH(cloid)):
                return None
            pos += _put_bytes(self.buffer + pos, K_CANCEL_CLOID_ENTRY)
            pos += pack_int(self.buffer + pos, asset_i)
            pos += _put_bytes(self.buffer + pos, K_CLOID)
            pos += _put_ascii(self.buffer + pos, cloid)
            cancels[i] = {"asset": asset, "cloid": cloid}
        action = {"type": "cancelByCloid", "cancels": cancels}
        return action, PyBytes_FromStringAndSize(<char*>self.buffer, pos)

    cpdef object cancel_action(self, object asset, object oids, Py_ssize_t n):
        """{"type":"cancel","cancels":[{"a":asset,"o":oid}...]} for the first n oids."""
        cdef int64_t asset_i = 0, oid = 0
        cdef Py_ssize_t pos = 0, i
        cdef object item
        if not _as_int64(asset, &asset_i) or n <= 0 or n > MAX_BATCH or len(oids) < n:
            return None
        if not self.reserve(64 + n * 24):  # every entry is fixed-size: at most 22 bytes
            return None
        pos += _put_bytes(self.buffer, K_CANCEL_HEAD)
        pos += _put_array_header(self.buffer + pos, n)
        cancels = [None] * n
        for i in range(n):
            item = oids[i]
            if not _as_int64(item, &oid):
                return None
            pos += _put_bytes(self.buffer + pos, K_CANCEL_ENTRY)
            pos += pack_int(self.buffer + pos, asset_i)
            pos += _put_bytes(self.buffer + pos, K_O)
            pos += pack_int(self.buffer + pos, oid)
            cancels[i] = {"a": asset, "o": item}
        action = {"type": "cancel", "cancels": cancels}
        return action, PyBytes_FromStringAndSize(<char*>self.buffer, pos)


# ---------------------------------------------------------------------------------- secp256k1
# libsecp256k1 (inside coincurve's cffi module) is called through its C function pointers: the same
# library and context type coincurve uses, minus the per-call cffi and wrapper work.
_secp256k1_cache = None


def _load_secp256k1():
    """(context owner, context address, sign address, serialize address) from coincurve's library."""
    global _secp256k1_cache
    if _secp256k1_cache is None:
        from coincurve._libsecp256k1 import ffi, lib
        sign = ffi.addressof(lib, "secp256k1_ecdsa_sign_recoverable")
        serialize = ffi.addressof(lib, "secp256k1_ecdsa_recoverable_signature_serialize_compact")
        if ffi.sizeof("secp256k1_ecdsa_recoverable_signature") != RECOVERABLE_SIG_SIZE:
            raise RuntimeError("unexpected libsecp256k1 signature layout")
        context = lib.secp256k1_context_create(getattr(lib, "SECP256K1_CONTEXT_NONE", 1))
        if context == ffi.NULL:
            raise RuntimeError("secp256k1_context_create failed")
        context = ffi.gc(context, lib.secp256k1_context_destroy)
        if not lib.secp256k1_context_randomize(context, os.urandom(32)):  # side-channel blinding
            raise RuntimeError("secp256k1_context_randomize failed")
        _secp256k1_cache = (context, int(ffi.cast("uintptr_t", context)), int(ffi.cast("uintptr_t", sign)),
                            int(ffi.cast("uintptr_t", serialize)))
    return _secp256k1_cache


cdef object _hex_quantity(const uint8_t* big_endian32):
    # "0x" + lowercase hex without leading zeros, as eth_utils.to_hex(int) writes r and s
    cdef char text[66]
    cdef const char* digits = b"0123456789abcdef"
    cdef int i = 0, n = 2
    text[0] = 48
    text[1] = 120
    while i < 32 and big_endian32[i] == 0:
        i += 1
    if i == 32:
        text[2] = 48
        return PyUnicode_DecodeASCII(text, 3, NULL)
    if big_endian32[i] < 16:
        text[n] = digits[big_endian32[i]]
        n += 1
        i += 1
    while i < 32:
        text[n] = digits[big_endian32[i] >> 4]
        text[n + 1] = digits[big_endian32[i] & 15]
        n += 2
        i += 1
    return PyUnicode_DecodeASCII(text, n, NULL)


@cython.final
@cython.auto_pickle(False)
cdef class Secp256k1Signer:
    """ECDSA (RFC 6979, low s, recoverable) over 32-byte digests with one secret held in C memory.

    Raises ImportError/RuntimeError/AttributeError at construction when coincurve's library lacks the
    low-level symbols; callers then use coincurve's public API. Nothing here ever shows the secret.
    """

    def __cinit__(self, bytes secret not None):
        cdef tuple symbols
        if PyBytes_GET_SIZE(secret) != 32:
            raise ValueError("secret must be 32 bytes")
        symbols = _load_secp256k1()
        self.context_owner = symbols[0]
        self.context = <void*><uintptr_t>symbols[1]
        self.sign_fn = <secp256k1_sign_recoverable_fn><uintptr_t>symbols[2]
        self.serialize_fn = <secp256k1_serialize_compact_fn><uintptr_t>symbols[3]
        memcpy(self.secret, PyBytes_AS_STRING(secret), 32)

    def __dealloc__(self):
        memset(self.secret, 0, 32)

    def __repr__(self) -> str:
        return "<Secp256k1Signer>"

    def __reduce__(self):
        raise TypeError("Secp256k1Signer cannot be pickled")

    cdef int sign_into(self, const uint8_t* digest32, uint8_t* out64, int* recovery_id) noexcept nogil:
        """r ‖ s into out64 and the recovery id (0/1); returns 1 on success, 0 on failure."""
        cdef uint8_t signature[RECOVERABLE_SIG_SIZE]
        if not self.sign_fn(self.context, signature, digest32, self.secret, NULL, NULL):
            return 0
        return self.serialize_fn(self.context, out64, recovery_id, signature)

    def sign_digest(self, bytes digest not None) -> bytes:
        """65 bytes r ‖ s ‖ recovery id (0/1), like coincurve's sign_recoverable(digest, hasher=None)."""
        cdef bytes result = PyBytes_FromStringAndSize(NULL, 65)
        cdef uint8_t* out = <uint8_t*>PyBytes_AS_STRING(result)
        cdef int recovery_id = 0
        if PyBytes_GET_SIZE(digest) != 32:
            raise ValueError("digest must be 32 bytes")
        if not self.sign_into(<const uint8_t*>PyBytes_AS_STRING(digest), out, &recovery_id):
            raise ValueError("secp256k1 signing failed")
        out[64] = <uint8_t>recovery_id
        return result

    def sign_l1(self, bytes packed_action not None, uint64_t nonce, bytes vault_tail not None, expires_after,
                bint is_mainnet) -> dict:
        """The {"r","s","v"} signature of an L1 action from its msgpack bytes (digest as l1_digest)."""
        cdef uint8_t digest[32]
        cdef uint8_t rs[64]
        cdef int recovery_id = 0
        cdef uint64_t expiry = 0 if expires_after is None else <uint64_t>expires_after
        l1_digest_into(<const uint8_t*>PyBytes_AS_STRING(packed_action), PyBytes_GET_SIZE(packed_action),
                       nonce, <const uint8_t*>PyBytes_AS_STRING(vault_tail), PyBytes_GET_SIZE(vault_tail),
                       expires_after is not None, expiry, is_mainnet, digest)
        if not self.sign_into(digest, rs, &recovery_id):
            raise ValueError("secp256k1 signing failed")
        return {"r": _hex_quantity(rs), "s": _hex_quantity(rs + 32), "v": recovery_id + 27}
