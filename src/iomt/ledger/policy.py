"""The privacy header: the facility's policy, carried and signed in every block.

BIoMT gives each block two headers; the *privacy header* "enforces the facility-defined privacy
policies and authorize[s] IoMT devices", and the bolster's owner controls the ledger "through
the policy header". The paper does not say what is in it, so here it is made concrete:

* ``authorized_devices`` -- the devices admitted to the facility (added by an Origin
  transaction, dropped by Remove);
* ``rules`` -- for each requester role (physician, service provider, the patient, ...)
  and each of the two request types, Access (3) and Observe (4): which devices the role may
  reach (a set, or every authorized device) and, for Observe, the minimal interval between
  updates -- the paper's threshold that "control[s] the network overhead and reduce[s] the
  likelihood of ... flooding attack, denial of service";
* ``facility_id`` and a ``version`` that grows with every change.

The header has one canonical encoding (sets sorted, rules ordered by role then action); the
block header carries its SHA-256, so the bolster's block signature covers the policy and any
later edit of a stored header is detected. The policy in force is the one in the latest block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import pairwise

from .encoding import Reader, Writer, check_u64, tag
from .errors import LedgerDecodeError, PolicyDeniedError
from .transactions import TxType

__all__ = ["REQUEST_TYPES", "AccessRule", "PrivacyHeader"]

#: The transaction types a requester role can be granted.
REQUEST_TYPES = frozenset({TxType.ACCESS, TxType.OBSERVE})

_TAG = tag("iomt/ledger/privacy-header/v1")


def _names(values: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(values, str):
        raise ValueError(f"{what} must be a collection of ids, not one string")
    out = frozenset(values)
    for v in out:
        if not isinstance(v, str) or not v:
            raise ValueError(f"{what} must be non-empty strings")
    return out


@dataclass(frozen=True, slots=True)
class AccessRule:
    """What one requester role may do: Access or Observe, on which devices."""

    role: str
    action: TxType
    devices: frozenset[str] = field(default_factory=frozenset)
    all_devices: bool = False
    #: Observe only: the minimal interval between updates, in nanoseconds (0 = no limit).
    observe_interval: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not self.role:
            raise ValueError("role must be a non-empty string")
        action = TxType(self.action)
        if action not in REQUEST_TYPES:
            raise ValueError(f"a rule grants Access or Observe, not {action.name}")
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "devices", _names(self.devices, "devices"))
        object.__setattr__(self, "all_devices", bool(self.all_devices))
        check_u64("observe_interval", self.observe_interval)
        if action is TxType.ACCESS and self.observe_interval:
            raise ValueError("observe_interval applies to Observe rules only")

    def covers(self, device_id: str) -> bool:
        return self.all_devices or device_id in self.devices


@dataclass(frozen=True, slots=True)
class PrivacyHeader:
    """A facility's privacy policy; canonical, hashable, signed inside each block header."""

    facility_id: str
    version: int = 0
    authorized_devices: frozenset[str] = field(default_factory=frozenset)
    rules: tuple[AccessRule, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.facility_id, str) or not self.facility_id:
            raise ValueError("facility_id must be a non-empty string")
        check_u64("version", self.version)
        object.__setattr__(
            self, "authorized_devices", _names(self.authorized_devices, "authorized_devices")
        )
        rules = tuple(sorted(self.rules, key=lambda r: (r.role.encode("utf-8"), r.action)))
        for a, b in pairwise(rules):
            if (a.role, a.action) == (b.role, b.action):
                raise ValueError(f"two rules for role {a.role!r} and {a.action.name}")
        object.__setattr__(self, "rules", rules)

    # -- queries -----------------------------------------------------------------------------

    def is_authorized(self, device_id: str) -> bool:
        return device_id in self.authorized_devices

    def rule_for(self, role: str, action: TxType) -> AccessRule | None:
        for rule in self.rules:
            if rule.role == role and rule.action == action:
                return rule
        return None

    def permits(self, role: str, action: TxType, device_id: str) -> bool:
        """Whether a requester in ``role`` may ``action`` (Access/Observe) ``device_id``."""
        rule = self.rule_for(role, action)
        return rule is not None and self.is_authorized(device_id) and rule.covers(device_id)

    def require(self, role: str, action: TxType, device_id: str) -> AccessRule:
        """The rule that permits the request; raises :class:`PolicyDeniedError` otherwise."""
        if not self.is_authorized(device_id):
            raise PolicyDeniedError(f"device {device_id!r} is not authorized in this facility")
        rule = self.rule_for(role, action)
        if rule is None or not rule.covers(device_id):
            raise PolicyDeniedError(
                f"role {role!r} may not {TxType(action).name.lower()} device {device_id!r}"
            )
        return rule

    # -- changes (each returns a new header with a higher version) ---------------------------

    def with_device(self, device_id: str) -> PrivacyHeader:
        """After an Origin transaction: admit ``device_id``."""
        return replace(
            self,
            version=self.version + 1,
            authorized_devices=self.authorized_devices | {device_id},
        )

    def without_device(self, device_id: str) -> PrivacyHeader:
        """After a Remove transaction: drop ``device_id`` everywhere it appears."""
        rules = tuple(replace(r, devices=r.devices - {device_id}) for r in self.rules)
        return replace(
            self,
            version=self.version + 1,
            authorized_devices=self.authorized_devices - {device_id},
            rules=rules,
        )

    def with_rule(self, rule: AccessRule) -> PrivacyHeader:
        """Add or replace the rule for ``(rule.role, rule.action)``."""
        rules = tuple(r for r in self.rules if (r.role, r.action) != (rule.role, rule.action))
        return replace(self, version=self.version + 1, rules=(*rules, rule))

    # -- canonical form ----------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        w = Writer(_TAG).text(self.facility_id).u64(self.version)
        w.texts(self.authorized_devices).u32(len(self.rules))
        for r in self.rules:
            w.text(r.role).u8(r.action).u8(1 if r.all_devices else 0).texts(r.devices)
            w.u64(r.observe_interval)
        return w.getvalue()

    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding: what the block header commits to."""
        return hashlib.sha256(self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> PrivacyHeader:
        r = Reader(data, "privacy header")
        r.expect_tag(_TAG)
        try:
            facility_id, version, devices = r.text(), r.u64(), r.texts()
            rules = []
            for _ in range(r.u32()):
                role, action, all_flag = r.text(), r.u8(), r.u8()
                if all_flag > 1:
                    raise LedgerDecodeError("privacy header: all_devices flag must be 0 or 1")
                rules.append(AccessRule(role, TxType(action), r.texts(), bool(all_flag), r.u64()))
            r.end()
            header = cls(facility_id, version, devices, tuple(rules))
        except ValueError as exc:
            raise LedgerDecodeError(f"privacy header: {exc}") from exc
        if header.to_bytes() != bytes(data):
            raise LedgerDecodeError("privacy header: not in canonical form (rule order)")
        return header
