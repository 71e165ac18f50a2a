from libc.stdint cimport uint8_t, int64_t

# keccak256 of n bytes at data into out[0:32] (the Ethereum hash, not SHA3-256)
cdef void keccak256_into(const uint8_t* data, Py_ssize_t n, uint8_t* out) noexcept nogil

# decimal text of ticks × 10^-decimals, no exponent, no trailing zeros (the SDK float_to_wire form);
# writes at most 32 bytes into out and returns the length
cdef Py_ssize_t format_ticks(int64_t ticks, int decimals, char* out) noexcept nogil
