# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hot pieces of action signing in C: keccak256, the L1 action digest and wire number text.

The Python fallbacks in hlfast.signer produce the same bytes; tests check both against the SDK.
"""
from libc.stdint cimport uint8_t, uint64_t, int64_t
from libc.string cimport memcpy, memset
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeASCII

cdef uint64_t ROUND_CONSTANTS[24]
ROUND_CONSTANTS[:] = [
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
]
cdef int ROTATIONS[24]
ROTATIONS[:] = [1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44]
cdef int PI_LANES[24]
PI_LANES[:] = [10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1]

cdef enum:
    RATE = 136  # keccak256: 1088-bit rate

cdef inline uint64_t _rotl(uint64_t x, int n) noexcept nogil:
    return (x << n) | (x >> (64 - n))


cdef void _keccak_f(uint64_t* st) noexcept nogil:
    cdef uint64_t bc[5]
    cdef uint64_t t
    cdef int rnd, i, j
    for rnd in range(24):
        for i in range(5):
            bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20]
        for i in range(5):
            t = bc[(i + 4) % 5] ^ _rotl(bc[(i + 1) % 5], 1)
            for j in range(0, 25, 5):
                st[j + i] ^= t
        t = st[1]
        for i in range(24):
            j = PI_LANES[i]
            bc[0] = st[j]
            st[j] = _rotl(t, ROTATIONS[i])
            t = bc[0]
        for j in range(0, 25, 5):
            for i in range(5):
                bc[i] = st[j + i]
            for i in range(5):
                st[j + i] ^= (~bc[(i + 1) % 5]) & bc[(i + 2) % 5]
        st[0] ^= ROUND_CONSTANTS[rnd]


cdef inline void _absorb_block(uint64_t* st, const uint8_t* block, Py_ssize_t n) noexcept nogil:
    # lanes are little-endian; byte-wise xor keeps this independent of the host byte order
    cdef Py_ssize_t i
    for i in range(n):
        st[i >> 3] ^= (<uint64_t>block[i]) << (8 * (i & 7))


cdef void keccak256_into(const uint8_t* data, Py_ssize_t n, uint8_t* out) noexcept nogil:
    cdef uint64_t st[25]
    cdef uint8_t last[RATE]
    cdef Py_ssize_t i, tail
    memset(st, 0, sizeof(st))
    while n >= RATE:
        _absorb_block(st, data, RATE)
        _keccak_f(st)
        data += RATE
        n -= RATE
    tail = n
    memset(last, 0, RATE)
    if tail:
        memcpy(last, data, tail)
    last[tail] ^= 0x01  # keccak padding (SHA3 would use 0x06)
    last[RATE - 1] ^= 0x80
    _absorb_block(st, last, RATE)
    _keccak_f(st)
    for i in range(32):
        out[i] = <uint8_t>(st[i >> 3] >> (8 * (i & 7)))


cdef Py_ssize_t format_ticks(int64_t ticks, int decimals, char* out) noexcept nogil:
    cdef char digits[24]
    cdef Py_ssize_t nd = 0, pos = 0, i, frac_end
    cdef uint64_t v
    cdef bint negative = ticks < 0
    v = <uint64_t>(-ticks) if negative else <uint64_t>ticks
    while True:
        digits[nd] = <char>(48 + v % 10)
        nd += 1
        v //= 10
        if v == 0:
            break
    # digits[] holds the number least significant first
    if negative:
        out[pos] = 45
        pos += 1
    if decimals <= 0:
        for i in range(nd - 1, -1, -1):
            out[pos] = digits[i]
            pos += 1
        if nd > 1 or digits[0] != 48:
            memset(out + pos, 48, -decimals)
            pos += -decimals
        return pos
    while nd <= decimals:  # pad so there is at least one whole digit
        digits[nd] = 48
        nd += 1
    frac_end = 0  # first significant fractional digit from the right
    while frac_end < decimals and digits[frac_end] == 48:
        frac_end += 1
    for i in range(nd - 1, decimals - 1, -1):
        out[pos] = digits[i]
        pos += 1
    if frac_end < decimals:
        out[pos] = 46
        pos += 1
        for i in range(decimals - 1, frac_end - 1, -1):
            out[pos] = digits[i]
            pos += 1
    if negative and pos == 2 and out[1] == 48:  # "-0" cannot occur for ints, kept for safety
        out[0] = 48
        pos = 1
    return pos


def keccak256(bytes data not None) -> bytes:
    """keccak256 digest (32 bytes) of data."""
    cdef bytes result = PyBytes_FromStringAndSize(NULL, 32)
    keccak256_into(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                   <uint8_t*>PyBytes_AS_STRING(result))
    return result


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


def l1_digest(bytes packed_action not None, uint64_t nonce, bytes vault_tail not None, expires_after,
              bint is_mainnet) -> bytes:
    """EIP-712 digest of an L1 action: packed_action is msgpack(action), vault_tail is b"\\x00"
    or b"\\x01" + 20 address bytes, expires_after an ms time or None."""
    cdef Py_ssize_t n_action = PyBytes_GET_SIZE(packed_action)
    cdef Py_ssize_t n_vault = PyBytes_GET_SIZE(vault_tail)
    cdef Py_ssize_t total = n_action + 8 + n_vault + (0 if expires_after is None else 9)
    cdef bytes buffer = PyBytes_FromStringAndSize(NULL, total)
    cdef uint8_t* data = <uint8_t*>PyBytes_AS_STRING(buffer)
    cdef uint8_t struct_input[96]
    cdef uint8_t final_input[66]
    cdef bytes result = PyBytes_FromStringAndSize(NULL, 32)
    memcpy(data, PyBytes_AS_STRING(packed_action), n_action)
    _put_u64_be(data + n_action, nonce)
    memcpy(data + n_action + 8, PyBytes_AS_STRING(vault_tail), n_vault)
    if expires_after is not None:
        data[n_action + 8 + n_vault] = 0
        _put_u64_be(data + n_action + 9 + n_vault, <uint64_t>expires_after)
    memcpy(struct_input, AGENT_TYPEHASH, 32)
    if is_mainnet:
        memcpy(struct_input + 32, SOURCE_A_HASH, 32)
    else:
        memcpy(struct_input + 32, SOURCE_B_HASH, 32)
    keccak256_into(data, total, struct_input + 64)  # connection id
    final_input[0] = 0x19
    final_input[1] = 0x01
    memcpy(final_input + 2, DOMAIN_SEPARATOR, 32)
    keccak256_into(struct_input, 96, final_input + 34)
    keccak256_into(final_input, 66, <uint8_t*>PyBytes_AS_STRING(result))
    return result


def ticks_to_wire(int64_t ticks, int decimals) -> str:
    """Same text as hlfast.signer.ticks_to_wire (the SDK's float_to_wire of ticks × 10^-decimals)."""
    cdef char buf[48]
    if decimals > 18 or decimals < -18:
        raise ValueError("decimals must lie in -18..18")
    cdef Py_ssize_t n = format_ticks(ticks, decimals, buf)
    return PyUnicode_DecodeASCII(buf, n, NULL)
