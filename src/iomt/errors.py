"""The one error tree of iomt.

Every failure a caller can act on is an ``IomtError``. Library exceptions (cryptography's
``InvalidTag``, cyclonedds' ``DDSException``, sqlite3 errors, ...) are wrapped at the layer
boundary that calls the library, so callers never catch a third-party type and no function
returns ``None`` to mean "failed".

    IomtError
    ├── ProtocolError               a message or transition the protocol does not allow
    │   ├── LocalProtocolError      we were asked to do something illegal
    │   └── RemoteProtocolError     a peer sent something malformed or out of order
    ├── AuthenticationError         tags, signatures, tokens, proofs of possession
    │   └── ReplyRejectedError      a service reply did not prove who sent it (rclpy runtime)
    ├── AuthorizationError          authenticated, but not permitted (policy, consent, scope)
    ├── LedgerVerificationError     the log or a proof does not verify
    ├── TransportError              the middleware could not deliver (timeouts, no peer)
    ├── StorageError                files, keystore, databases
    └── ConfigurationError          bad user input to commands, topologies, configs
"""

from __future__ import annotations


class IomtError(Exception):
    """Base of every error iomt raises on purpose."""


class ProtocolError(IomtError):
    """A message or state transition the protocol does not allow."""


class LocalProtocolError(ProtocolError):
    """The local side tried an illegal operation; state is unchanged."""


class RemoteProtocolError(ProtocolError):
    """A peer sent bytes or a message that is malformed or not allowed now."""


class AuthenticationError(IomtError):
    """A tag, signature, token or proof of possession did not verify."""


class ReplyRejectedError(AuthenticationError):
    """A reply to our request failed the call's acceptance check (not from the server we
    called, or not an answer to this request). The embedded runtime drops such replies and
    keeps waiting; the rclpy runtime cannot (rclpy completes a call with the first reply
    that names it), so there the call fails with this error instead."""


class AuthorizationError(IomtError):
    """The requester is authenticated but not allowed to do this."""


class LedgerVerificationError(IomtError):
    """A ledger, block or Merkle proof does not verify.

    ``expected`` and ``computed`` carry the values that disagreed, when there are any.
    """

    def __init__(self, message: str, *, expected: object = None, computed: object = None):
        super().__init__(message)
        self.expected = expected
        self.computed = computed


class TransportError(IomtError):
    """The middleware could not deliver: no matching peer, timeout, entity failure."""


class ServiceTimeoutError(TransportError):
    """A service call got no reply within its deadline."""


class StorageError(IomtError):
    """Reading or writing a file, keystore or database failed."""


class ConfigurationError(IomtError):
    """Invalid user input: a bad option, topology, config file or name."""
