"""Typed node parameters: one frozen dataclass per node kind, as rclpy declares a node's
parameters with their types -- declared here, beside the nodes, so that a node and the plans
that start it read one declaration.

Every setting of a node kind is a field with one type and (unless the plan must give it)
one default: a node takes its kind's dataclass itself as its config, which its factory
builds from what a container passes (:meth:`Params.from_mapping`, naming the node);
tests/topology/test_params.py lists the constructors that still repeat their kind's defaults
as keyword arguments and holds them equal. A value from a launch file, the command line or a
spec file is parsed by its field's type (``"0.5"`` becomes ``0.5``, ``"true"`` ``True``,
``"normal"`` the ``Literal`` ``"NORMAL"``); an unknown key, a missing one or a value of the
wrong type is a :class:`~iomt.errors.ConfigurationError` naming the node and the key, raised
while the ``LaunchPlan`` is built (iomt.topology.params registers each node factory's kind)
rather than in a container at start-up.

A ``Params`` reads like the mapping of keyword arguments it stands for (``p["x"]``,
``{**p}``); :meth:`Params.to_json` is what a spec file holds and what the container passes
to the node's factory, so a node gets the same values whether it was started from a spec
file or by ``iomt-group``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Literal, Self

from iomt.core.modes import Mode
from iomt.errors import ConfigurationError

__all__ = [
    "AccessRule",
    "AdminParams",
    "BolsterParams",
    "CapabilityClass",
    "CentralParams",
    "CloudParams",
    "Cluster",
    "DeviceBiomt",
    "DeviceParams",
    "MasterParams",
    "ModeName",
    "Params",
    "PhysicianBiomt",
    "ProviderParams",
    "Retention",
    "Synchronous",
    "VitalKindName",
    "VitalsMonitorParams",
    "VitalsSensorParams",
    "WalletBiomt",
    "WalletDevice",
    "WalletParams",
    "parse_value",
    "to_plain",
]

#: SQLite durability of a ledger or store (FULL: fsync per commit)
Synchronous = Literal["FULL", "NORMAL"]
ModeName = Literal["distributed", "centralized", "base", "biomt"]
CapabilityClass = Literal["none", "symmetric", "ecc", "abe"]
VitalKindName = Literal["heart_rate", "blood_pressure"]
Retention = Literal["keep", "evict-after-sync"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class _Invalid(Exception):
    """A value that does not fit a type (turned into a ConfigurationError by the caller,
    who knows the node and the key)."""


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_value(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (a resolved annotation); strings from a command line or
    launch file are parsed, anything else must already be of the type. Raises
    ``ValueError`` with what was expected."""
    try:
        return _parse(value, tp)
    except _Invalid as exc:
        raise ValueError(str(exc)) from None


def _parse(value: Any, tp: Any) -> Any:  # noqa: PLR0911  (one case per kind of type)
    if tp is Any or type(value) is tp:  # what plans hold already (bool is not an int here)
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _parse_union(value, args)
    if origin is Literal:
        return _parse_literal(value, args)
    if isinstance(tp, type) and issubclass(tp, Params):
        return _parse_params(value, tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _parse_enum(value, tp)
    if tp in _SCALARS:
        return _SCALARS[tp](value)
    if origin is tuple:
        return _parse_tuple(value, args)
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        return _parse_mapping(value, args)
    raise TypeError(f"no parser for parameters of type {tp!r}")


def _parse_union(value: Any, args: tuple[Any, ...]) -> Any:
    if value is None and type(None) in args:
        return None
    choices = [a for a in args if a is not type(None)]
    if len(choices) == 1:  # X | None: what X says
        return _parse(value, choices[0])
    for arg in choices:
        try:
            return _parse(value, arg)
        except _Invalid:
            pass
    raise _Invalid(f"must be {' or '.join(_describe(a) for a in args)}, not {value!r}")


def _parse_literal(value: Any, args: tuple[Any, ...]) -> Any:
    if value in args:
        return value
    if isinstance(value, str):  # FULL / full: choices are matched without case
        for choice in args:
            if isinstance(choice, str) and choice.lower() == value.lower():
                return choice
    raise _Invalid(f"must be one of {', '.join(repr(a) for a in args)}, not {value!r}")


def _parse_enum(value: Any, tp: type[enum.Enum]) -> enum.Enum:
    try:
        return tp(value)
    except ValueError:
        pass
    if isinstance(value, str):  # as a Literal's choices: matched without case
        for member in tp:
            if isinstance(member.value, str) and member.value.lower() == value.lower():
                return member
    raise _Invalid(f"must be one of {[m.value for m in tp]}, not {value!r}")


def _parse_params(value: Any, tp: type[Params]) -> Params:
    if isinstance(value, tp):
        return value
    if isinstance(value, str):
        value = _json(value)
    if not isinstance(value, Mapping):
        raise _Invalid(f"must be a mapping of {tp.__name__} fields, not {value!r}")
    try:
        return tp.from_mapping(value)
    except ConfigurationError as exc:
        raise _Invalid(f"is not a valid {tp.__name__}: {exc}") from None


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise _Invalid(f"must be a bool (true/false), not {value!r}")


def _parse_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _Invalid(f"must be an int, not {value!r}")


def _parse_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _Invalid(f"must be a float, not {value!r}")


def _parse_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Invalid(f"must be a string, not {value!r}")


_SCALARS: dict[Any, Callable[[Any], Any]] = {
    bool: _parse_bool,
    int: _parse_int,
    float: _parse_float,
    str: _parse_str,
}


def _parse_tuple(value: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if isinstance(value, str):  # a command line's list: a,b,c (or JSON)
        value = _json(value) if value.startswith("[") else [v for v in value.split(",") if v]
    if not isinstance(value, list | tuple):
        raise _Invalid(f"must be a list, not {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_parse(v, args[0]) for v in value)
    if len(args) != len(value):
        raise _Invalid(f"must be a list of {len(args)}, not {value!r}")
    return tuple(_parse(v, a) for v, a in zip(value, args, strict=True))


def _parse_mapping(value: Any, args: tuple[Any, ...]) -> Mapping[Any, Any]:
    if isinstance(value, str):
        value = _json(value)
    if not isinstance(value, Mapping):
        raise _Invalid(f"must be a mapping, not {value!r}")
    key_type, value_type = args or (Any, Any)
    return types.MappingProxyType(
        {_parse(k, key_type): _parse(v, value_type) for k, v in value.items()}
    )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise _Invalid(f"is not valid JSON: {text!r}") from None


def to_plain(value: Any) -> Any:
    """JSON's shape of a parameter value: lists, dicts, strings, numbers."""
    if isinstance(value, Params):
        return value.to_json()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


@functools.cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, resolved type) of each field of a Params class."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params(Mapping[str, Any]):
    """The parameters of one node kind (subclasses are frozen, keyword-only dataclasses).

    Constructing one parses and checks every field by its type."""

    #: the roles the facility CA certifies for a node of this kind (iomt.crypto.roles)
    roles: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name, tp in _fields(type(self)):
            value = getattr(self, name)
            try:
                parsed = _parse(value, tp)
            except _Invalid as exc:
                raise ConfigurationError(f"parameter {name!r} {exc}") from None
            if parsed is not value:
                object.__setattr__(self, name, parsed)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, node: str = "") -> Self:
        """Parse ``raw`` (a plan's, a command line's or a spec file's values)."""
        where = f"node {node}: " if node else ""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ConfigurationError(
                f"{where}unknown parameter {unknown[0]!r} for {cls.__name__} "
                f"(known: {', '.join(sorted(names))})"
            )
        missing = sorted(
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in raw
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )
        if missing:
            raise ConfigurationError(f"{where}missing parameter {missing[0]!r}")
        try:
            return cls(**raw)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}{exc}") from None

    def to_json(self) -> dict[str, Any]:
        """Every field (defaults too), in JSON's shape: a spec file's ``params``."""
        return {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    # -- read as the mapping of keyword arguments it stands for ---------------------------

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return _names(cls)


# -- Bilal & Hassan's framework ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceBiomt(Params):
    """A device's BIoMT link (iomt.nodes.biomt_device): where it is provisioned and stores."""

    bolster: str
    admin: str
    # each reading also to the bolster's no-crypto base (Fig. 3's yardstick)
    base: bool = True
    # every Store its bolster acknowledged, for the report to hold the ledgers to
    ack_log: str | None = None
    store_timeout_s: float = 2.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceParams(Params):
    """A sensor with a capability class (iomt.nodes.device, which takes these as its
    ``DeviceNodeConfig``)."""

    roles: ClassVar[tuple[str, ...]] = ("device",)

    keystore: str
    capability: CapabilityClass
    kind: VitalKindName
    x: float
    y: float
    wallet: str
    patient_id: str = ""
    radio_range: float = 10.0
    announce_period_s: float = 20.0
    sample_period_s: float = 1.0
    policy: str = ""
    mode: Mode = Mode.DISTRIBUTED
    seed: int = 0
    central: str = "central"
    storage_dir: str | None = None
    results: str | None = None
    convert_timeout_s: float = 1.0
    # Long: a server that is behind still stores what it answers late, and a reading
    # retried too early is only a duplicate in its queue (measured at 400 devices).
    upload_timeout_s: float = 10.0
    providers: tuple[str, ...] | None = None
    biomt: DeviceBiomt | None = None  # mode biomt only


@dataclasses.dataclass(frozen=True, kw_only=True)
class WalletDevice(Params):
    """One of a patient's devices, as the wallet knows it."""

    name: str
    technique: str
    kind: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class WalletBiomt(Params):
    """The bolster a wallet reports its token issues to."""

    bolster: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class WalletParams(Params):
    """A patient's wallet: consent and tokens (iomt.nodes.wallet)."""

    roles: ClassVar[tuple[str, ...]] = ("wallet",)

    keystore: str
    patient_id: str
    devices: tuple[WalletDevice, ...]
    providers: tuple[str, ...]
    token_lifetime_s: float = 3600.0
    biomt: WalletBiomt | None = None  # mode biomt only


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhysicianBiomt(Params):
    """A provider's BIoMT workload as a physician (iomt.nodes.biomt_physician): Access and
    Observe at its bolsters (its start delay and seed are the provider's)."""

    bolsters: tuple[str, ...]
    cloud: str = ""
    ops: int = 200
    min_devices: int = 1
    observe_duration_s: float = 3.0
    observe_interval_s: float = 0.0
    sessions: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProviderParams(Params):
    """A healthcare provider's workload (iomt.nodes.provider)."""

    roles: ClassVar[tuple[str, ...]] = ("provider",)

    keystore: str
    wallets: tuple[str, ...]
    requests: int = 100
    concurrency: int = 4
    techniques: tuple[str, ...] | None = None
    mode: ModeName = "distributed"
    seed: int = 0
    start_delay_s: float = 1.0
    central: str = "central"
    request_timeout_s: float = 3.0
    wallet_timeout_s: float = 5.0
    results: str | None = None
    fhir: str | None = None
    script: tuple[tuple[str, str], ...] | None = None
    settle_s: float = 0.5
    biomt: PhysicianBiomt | None = None  # mode biomt only
    devices: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class CentralParams(Params):
    """The centralized baseline's server (iomt.nodes.central)."""

    roles: ClassVar[tuple[str, ...]] = ("central",)

    keystore: str
    wallets: tuple[str, ...]
    policy: str = ""
    storage_dir: str | None = None
    results: str | None = None


# -- BIoMT -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class AccessRule(Params):
    """A rule of a bolster's initial privacy header: a role may access or observe."""

    role: str
    action: Literal["access", "observe"]
    observe_interval_s: float = 0.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cluster(Params):
    """A bolster's cluster (iomt.nodes.cluster_head): its id, every member's priority and
    how often the head witnesses its members' logs."""

    id: str
    members: Mapping[str, int]
    checkpoint_period_s: float = 2.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class BolsterParams(Params):
    """A bolster, a cluster head when in a cluster (iomt.nodes.bolster, whose node takes
    these as its ``config``)."""

    roles: ClassVar[tuple[str, ...]] = ("bolster",)

    keystore: str
    storage_dir: str
    users: tuple[tuple[str, str], ...]
    rules: tuple[AccessRule, ...] | None = None
    observers: tuple[str, ...] | None = None
    synchronous: Synchronous = "FULL"
    retention: Retention = "keep"
    cloud: str = ""
    cloud_period_s: float = 1.0
    master: str = ""
    cluster: Cluster | None = None  # this bolster may be elected the cluster's head
    request_rate: float = 1000.0
    store_rate: float = 100.0
    update_rate: float = 50.0
    max_block_transactions: int = 256
    max_block_age_s: float = 2.0
    results: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class CloudParams(Params):
    roles: ClassVar[tuple[str, ...]] = ("cloud",)

    keystore: str
    storage_dir: str
    users: tuple[tuple[str, str], ...]
    synchronous: Synchronous = "FULL"
    results: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdminParams(Params):
    roles: ClassVar[tuple[str, ...]] = ("admin",)

    keystore: str
    # (device URI, owner, bolster) the facility bought: what enrolments are approved against
    inventory: tuple[tuple[str, str, str], ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class MasterParams(Params):
    roles: ClassVar[tuple[str, ...]] = ("master",)

    keystore: str
    storage_dir: str
    synchronous: Synchronous = "FULL"
    results: str | None = None


# -- examples ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class VitalsSensorParams(Params):
    kind: VitalKindName = "heart_rate"
    seed: int = 0
    period_s: float = 1.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class VitalsMonitorParams(Params):
    topics: tuple[str, ...] = ()
