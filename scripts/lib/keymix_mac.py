"""keymix's MAC (keymix/src/mac.rs) for the e2e tests that forge keymix datagrams: the
XChaCha20-Poly1305 tag over an empty plaintext with the data as associated data, the
nonce the first 24 bytes of SHA-256(data). HChaCha20 is written out: the `cryptography`
package has ChaCha20-Poly1305 but not its X variant. Needs `cryptography` (python3-
cryptography); callers that can run without it check `available()` first."""

import hashlib
import struct


def available():
    try:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: F401
    except ImportError:
        return False
    return True


def _rotl(v, n):
    return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))


def hchacha20(key, nonce):
    st = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    st += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce))

    def qr(a, b, c, d):
        st[a] = (st[a] + st[b]) & 0xFFFFFFFF
        st[d] = _rotl(st[d] ^ st[a], 16)
        st[c] = (st[c] + st[d]) & 0xFFFFFFFF
        st[b] = _rotl(st[b] ^ st[c], 12)
        st[a] = (st[a] + st[b]) & 0xFFFFFFFF
        st[d] = _rotl(st[d] ^ st[a], 8)
        st[c] = (st[c] + st[d]) & 0xFFFFFFFF
        st[b] = _rotl(st[b] ^ st[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12)
        qr(1, 5, 9, 13)
        qr(2, 6, 10, 14)
        qr(3, 7, 11, 15)
        qr(0, 5, 10, 15)
        qr(1, 6, 11, 12)
        qr(2, 7, 8, 13)
        qr(3, 4, 9, 14)
    return struct.pack("<8I", *(st[0:4] + st[12:16]))


def keymix_mac(key, data):
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    nonce = hashlib.sha256(data).digest()[:24]
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])).encrypt(bytes(4) + nonce[16:], b"", data)


def mac1_key_v1(responder_public):
    """The version-1 mac1 key of a responder: anyone who knows its public key has it."""
    return hashlib.sha256(b"trident keymix v1 mac1" + responder_public).digest()
