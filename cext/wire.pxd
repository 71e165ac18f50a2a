from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef enum:
    RATE = 136                  # keccak256: 1088-bit rate, in bytes
    MAX_BATCH = 200             # items per action accepted by the packer (the venue's cap)
    RECOVERABLE_SIG_SIZE = 65   # sizeof(secp256k1_ecdsa_recoverable_signature)

# incremental keccak256 (absorb pieces without joining them)
cdef struct KeccakSponge:
    uint64_t st[25]
    uint8_t block[RATE]
    Py_ssize_t fill

cdef void sponge_init(KeccakSponge* sp) noexcept nogil
cdef void sponge_absorb(KeccakSponge* sp, const uint8_t* data, Py_ssize_t n) noexcept nogil
cdef void sponge_finish(KeccakSponge* sp, uint8_t* out) noexcept nogil

# keccak256 of n bytes at data into out[0:32] (the Ethereum hash, not SHA3-256)
cdef void keccak256_into(const uint8_t* data, Py_ssize_t n, uint8_t* out) noexcept nogil

# decimal text of ticks × 10^-decimals, no exponent, no trailing zeros (the SDK float_to_wire form);
# writes at most 32 bytes into out and returns the length
cdef Py_ssize_t format_ticks(int64_t ticks, int decimals, char* out) noexcept nogil

# EIP-712 digest of an L1 action (protocol.md §3.6) into out[0:32]; vault_tail is 0x00 or 0x01 + address
cdef void l1_digest_into(const uint8_t* packed, Py_ssize_t n_packed, uint64_t nonce,
                         const uint8_t* vault_tail, Py_ssize_t n_vault, bint has_expiry,
                         uint64_t expires_after, bint is_mainnet, uint8_t* out) noexcept nogil

# msgpack encoding of an integer exactly as msgpack-python's Packer writes it; returns bytes written (<= 9)
cdef Py_ssize_t pack_int(uint8_t* out, int64_t v) noexcept nogil


cdef class ActionPacker:
    cdef uint8_t* buffer         # msgpack scratch, grown on demand (65 KiB at construction)
    cdef Py_ssize_t capacity     # bytes allocated at buffer
    cdef int sides[MAX_BATCH]    # converted inputs of the current batch: side +1 buy / -1 sell
    cdef int64_t ticks[MAX_BATCH]  # price in ticks of 10^-px_decimals
    cdef int64_t lots[MAX_BATCH]   # size in lots of 10^-sz_decimals

    cdef bint reserve(self, Py_ssize_t size) noexcept
    cdef int load_orders(self, object sides, object px_ticks, object sizes, object cloids, Py_ssize_t n,
                         int px_decimals, int sz_decimals, object tif)
    cdef object order_wire(self, Py_ssize_t i, object asset, int64_t asset_i, object cloid, int px_decimals,
                           int sz_decimals, object tif, bint reduce_only, object order_type, Py_ssize_t* pos)
    cpdef object order_action(self, object asset, object sides, object px_ticks, object sizes, object cloids,
                              Py_ssize_t n, int px_decimals, int sz_decimals, object tif, bint reduce_only)
    cpdef object batch_modify_action(self, object asset, object targets, object sides, object px_ticks,
                                     object sizes, object cloids, Py_ssize_t n, int px_decimals,
                                     int sz_decimals, object tif, bint reduce_only)
    cpdef object cancel_by_cloid_action(self, object asset, object cloids, Py_ssize_t n)
    cpdef object cancel_action(self, object asset, object oids, Py_ssize_t n)


ctypedef int (*secp256k1_sign_recoverable_fn)(const void* ctx, void* sig, const uint8_t* msg32,
                                              const uint8_t* seckey, const void* noncefp,
                                              const void* ndata) noexcept nogil
ctypedef int (*secp256k1_serialize_compact_fn)(const void* ctx, uint8_t* output64, int* recid,
                                               const void* sig) noexcept nogil


cdef class Secp256k1Signer:
    cdef uint8_t secret[32]                            # the private key (never exposed to Python)
    cdef void* context                                 # libsecp256k1 context (randomised, shared)
    cdef object context_owner                          # keeps the cffi-owned context alive
    cdef secp256k1_sign_recoverable_fn sign_fn         # secp256k1_ecdsa_sign_recoverable
    cdef secp256k1_serialize_compact_fn serialize_fn   # ..._recoverable_signature_serialize_compact

    # r ‖ s into out64 and the recovery id (0/1); returns 1 on success, 0 on failure
    cdef int sign_into(self, const uint8_t* digest32, uint8_t* out64, int* recovery_id) noexcept nogil
