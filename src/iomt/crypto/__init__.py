"""iomt.crypto — the security layer of both papers, pure Python and sans-IO.

Bilal & Hassan's security layer (symmetric DES/3DES, CP-ABE, ECC and "ECC + attributes"),
the publish module's "HMAC/digital signature", the wallet's per-device tokens, and
BIoMT's key establishment and provisioning, built on maintained libraries
(``cryptography``, ``pymcl`` for BLS12-381 pairings, ``cwt`` for CWT/COSE):

* :mod:`.techniques` — the security techniques (ST) behind one interface and a registry
* :mod:`.abe` — FAME CP-ABE (Agrawal-Chase, CCS 2017) and its policy language
* :mod:`.signing` — Ed25519 / ECDSA P-256 / HMAC-SHA256 and the signed publish envelope
* :mod:`.tokens` — CWT access tokens with proof of possession (RFC 8392 / RFC 8747)
* :mod:`.sessions` — SIGMA-I handshake, then AES-GCM records with a replay window
* :mod:`.keystore` — CA, identities, attribute authority and revocation on disk
* :mod:`.keys`, :mod:`.primitives`, :mod:`.encoding`, :mod:`.revocation`, :mod:`.errors`
* :mod:`.benchmark` — the measurements behind ``iomt crypto bench``

Nothing here imports DDS or the node layers; clocks and randomness are injectable where
the protocol depends on them. See docs/crypto.md.
"""
