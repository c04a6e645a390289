"""Ciphertext-policy attribute-based encryption: FAME on BLS12-381 and its policies.

The paper's CP-ABE technique (and the attribute half of its ECC+attributes hybrid).
:mod:`.policy` turns ``role:cardiologist AND facility:F1`` into an LSSS matrix;
:mod:`.fame` is the Agrawal-Chase scheme used as a KEM.
"""

from __future__ import annotations

from iomt.crypto.abe.fame import (
    AttributeAuthority,
    FameCiphertext,
    FamePublicParams,
    FameUserKey,
    decapsulate,
    encapsulate,
)
from iomt.crypto.abe.policy import Policy

__all__ = [
    "AttributeAuthority",
    "FameCiphertext",
    "FamePublicParams",
    "FameUserKey",
    "Policy",
    "decapsulate",
    "encapsulate",
]
