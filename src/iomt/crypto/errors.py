"""The security layer's errors: specific subclasses of the one tree in :mod:`iomt.errors`.

Every library exception (cryptography's ``InvalidTag`` / ``InvalidSignature``, cwt's
``CWTError``, pymcl's ``ValueError``, cbor2's decode errors) is caught where the library is
called and re-raised as one of these, so callers catch ``AuthenticationError`` /
``AuthorizationError`` and never a third-party type. Malformed input (truncated, garbage)
raises the same family as a forgery: a peer cannot tell the two apart and need not.

    AuthenticationError
    ├── DecryptionError                 a ciphertext did not open (tag, MAC, wrong key)
    │   └── MalformedCiphertextError    not a well-formed ciphertext of this technique
    ├── InvalidSignatureError           a signature or MAC did not verify / was malformed
    ├── CertificateError                a certificate is not issued by the CA, expired, ...
    │   └── CertificateRevokedError
    ├── TokenError                      an access token was rejected
    │   ├── TokenMalformedError, TokenSignatureError, TokenExpiredError, TokenNotYetValidError,
    │   ├── TokenAudienceError, TokenIssuerError, TokenRevokedError, TokenReplayedError,
    │   └── TokenProofError           the presenter did not prove possession of cnf
    ├── HandshakeError                  the session handshake peer did not authenticate
    └── SessionError                    a session record was rejected
        ├── SessionReplayError
        └── SessionExpiredError
    AuthorizationError
    ├── PolicyNotSatisfiedError         attribute keys do not satisfy the CP-ABE policy
    └── TokenScopeError                 a valid token does not grant this scope
    RemoteProtocolError
    └── HandshakeMessageError           a handshake message is malformed or out of order
    LocalProtocolError
    └── WrongKeyTypeError               key material of the wrong kind for a technique
    ConfigurationError
    ├── UnknownTechniqueError
    ├── PolicySyntaxError               a policy string does not parse or is too large
    └── KeyFormatError                  key bytes/PEM that are not a key of the expected type
    StorageError
    └── KeystoreError
"""

from __future__ import annotations

from iomt.errors import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    LocalProtocolError,
    RemoteProtocolError,
    StorageError,
)

__all__ = [
    "CertificateError",
    "CertificateRevokedError",
    "DecryptionError",
    "HandshakeError",
    "HandshakeMessageError",
    "InvalidSignatureError",
    "KeyFormatError",
    "KeystoreError",
    "MalformedCiphertextError",
    "PolicyNotSatisfiedError",
    "PolicySyntaxError",
    "SessionError",
    "SessionExpiredError",
    "SessionReplayError",
    "TokenAudienceError",
    "TokenError",
    "TokenExpiredError",
    "TokenIssuerError",
    "TokenMalformedError",
    "TokenNotYetValidError",
    "TokenProofError",
    "TokenReplayedError",
    "TokenRevokedError",
    "TokenScopeError",
    "TokenSignatureError",
    "UnknownTechniqueError",
    "WrongKeyTypeError",
]


# --- confidentiality -----------------------------------------------------------------


class DecryptionError(AuthenticationError):
    """A ciphertext did not open: bad tag or MAC, wrong key, or tampered bytes."""


class MalformedCiphertextError(DecryptionError):
    """The bytes are not a well-formed ciphertext of the technique asked to open them."""


class PolicyNotSatisfiedError(AuthorizationError):
    """The opener's attribute key does not satisfy the ciphertext's access policy."""


class PolicySyntaxError(ConfigurationError):
    """A CP-ABE policy string does not parse, or exceeds the size limits."""


class WrongKeyTypeError(LocalProtocolError):
    """A technique was given key material of another technique (caller bug)."""


class UnknownTechniqueError(ConfigurationError):
    """No security technique is registered under that name."""


class KeyFormatError(ConfigurationError):
    """Bytes or PEM that do not hold a key of the expected type."""


# --- authenticity --------------------------------------------------------------------


class InvalidSignatureError(AuthenticationError):
    """A signature or MAC did not verify, or the signed envelope is malformed."""


class CertificateError(AuthenticationError):
    """A certificate was not issued by the trusted CA, is outside its validity, or unusable."""


class CertificateRevokedError(CertificateError):
    """The certificate (or its subject) is on the keystore's revocation list."""


# --- tokens --------------------------------------------------------------------------


class TokenError(AuthenticationError):
    """An access token was rejected; the subclass says why."""


class TokenMalformedError(TokenError):
    """Not a CWT, or a CWT missing / mistyping a claim iomt requires."""


class TokenSignatureError(TokenError):
    """The COSE_Sign1 signature does not verify under the issuer's key."""


class TokenExpiredError(TokenError):
    """The current time is at or after ``exp`` (plus leeway)."""


class TokenNotYetValidError(TokenError):
    """The current time is before ``nbf`` (minus leeway)."""


class TokenAudienceError(TokenError):
    """The token was issued for another device (``aud``)."""


class TokenIssuerError(TokenError):
    """The token's issuer is not one this verifier trusts."""


class TokenRevokedError(TokenError):
    """The token id, its subject or its confirmation key has been revoked."""


class TokenReplayedError(TokenError):
    """A single-use token was presented twice, or a proof nonce was seen before."""


class TokenProofError(TokenError):
    """The presenter did not prove possession of the key in ``cnf``."""


class TokenScopeError(AuthorizationError):
    """The token is valid but does not grant the requested scope."""


# --- sessions ------------------------------------------------------------------------


class HandshakeError(AuthenticationError):
    """The handshake peer failed authentication (signature, MAC, credential)."""


class HandshakeMessageError(RemoteProtocolError):
    """A handshake message is malformed, or arrived when it is not allowed."""


class SessionError(AuthenticationError):
    """A session record was rejected (forged, malformed, or for another session)."""


class SessionReplayError(SessionError):
    """The record's sequence number was already received or is left of the window."""


class SessionExpiredError(SessionError):
    """The session passed its lifetime or message limit; run a new handshake."""


# --- storage -------------------------------------------------------------------------


class KeystoreError(StorageError):
    """The keystore directory is missing, malformed, or an entry does not exist."""
