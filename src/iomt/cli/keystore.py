"""``iomt keystore``: manage the keystore directory (like ``ros2 security create_keystore``).

    iomt keystore create KEYSTORE [--facility NAME]
    iomt keystore add-identity KEYSTORE NAME [--uri URI] [--algorithm ed25519|ecdsa-p256]
                               [--role ROLE ...] [--capability none|symmetric|ecc|abe]
    iomt keystore set-role KEYSTORE NAME --role ROLE [--role ROLE ...] [--capability CAP]
    iomt keystore add-attributes KEYSTORE NAME ATTRIBUTE [ATTRIBUTE ...]
    iomt keystore revoke KEYSTORE (--identity NAME | --serial N | --key FP | --token CTI)
    iomt keystore list KEYSTORE [--json]
    iomt keystore show KEYSTORE NAME [--json]

Roles (device, wallet, provider, bolster, cluster-head, cloud, admin, master, central; a
device with its capability class) are certified in the identity's certificates
(ExtendedKeyUsage, iomt.crypto.roles); ``set-role`` re-issues them and revokes the old
ones as superseded. Private keys are never printed; ``list`` and ``show`` show names, URIs,
roles, attributes, certificate serials, key fingerprints and revocation state.
"""

# Handlers import their dependencies lazily so `iomt --help` stays fast.

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from iomt.cli.args import at_least, between


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keystore",
        help="create and manage a keystore (identities, CA, attribute keys, revocation)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    sub = parser.add_subparsers(dest="keystore_command", metavar="ACTION")
    sub.required = True

    create = sub.add_parser("create", help="create a keystore with a facility CA and authority")
    create.add_argument("keystore", help="directory to create (must not exist or be empty)")
    create.add_argument("--facility", default="iomt", help="facility name (CA subject)")
    create.add_argument(
        "--max-attribute-reuse",
        type=at_least(1),
        default=2,
        help="how often one attribute may appear in a CP-ABE policy (default 2)",
    )
    create.set_defaults(func=_create)

    add = sub.add_parser("add-identity", help="create keys and certificates for a node")
    add.add_argument("keystore")
    add.add_argument("name", help="identity name, e.g. dev-001, wallet-alice, dr-bob")
    add.add_argument("--uri", help="identity URI (default iomt://<facility>/<name>)")
    add.add_argument("--algorithm", choices=("ed25519", "ecdsa-p256"), default="ed25519")
    add.add_argument(
        "--days", type=between(1, 36500), default=365, help="certificate validity in days"
    )
    _role_arguments(add, required=False)
    add.set_defaults(func=_add_identity)

    role = sub.add_parser(
        "set-role", help="re-issue an identity's certificates with a new role (old ones revoked)"
    )
    role.add_argument("keystore")
    role.add_argument("name")
    _role_arguments(role, required=True)
    role.set_defaults(func=_set_role)

    attrs = sub.add_parser("add-attributes", help="issue a CP-ABE attribute key to an identity")
    attrs.add_argument("keystore")
    attrs.add_argument("name")
    attrs.add_argument("attributes", nargs="+", metavar="ATTRIBUTE", help="e.g. role:cardiologist")
    attrs.set_defaults(func=_add_attributes)

    revoke = sub.add_parser("revoke", help="revoke an identity, certificate, key or token")
    revoke.add_argument("keystore")
    what = revoke.add_mutually_exclusive_group(required=True)
    what.add_argument("--identity", help="identity name (revokes its certificates too)")
    what.add_argument("--serial", help="certificate serial number (decimal)")
    what.add_argument("--key", help="public-key fingerprint (hex)")
    what.add_argument("--token", help="token id, CWT cti (hex)")
    revoke.add_argument("--reason", default="unspecified")
    revoke.set_defaults(func=_revoke)

    lst = sub.add_parser("list", help="list identities (public information only)")
    lst.add_argument("keystore")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=_list)

    show = sub.add_parser("show", help="one identity: roles, certificates, state")
    show.add_argument("keystore")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)


def _role_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    from iomt.crypto.roles import Role
    from iomt.crypto.techniques import Capability

    parser.add_argument(
        "--role",
        action="append",
        default=[],
        required=required,
        choices=[r.value for r in Role],
        help="a role to certify (repeat for several)",
    )
    parser.add_argument(
        "--capability",
        choices=[c.name.lower() for c in Capability],
        help="a device's capability class (required with --role device)",
    )


def _create(args: argparse.Namespace) -> int:
    from iomt.crypto.keystore import Keystore

    store = Keystore.create(
        args.keystore, facility=args.facility, max_attribute_reuse=args.max_attribute_reuse
    )
    print(f"created keystore {store.root} for facility {store.facility!r}")
    print(f"  CA: {store.ca_certificate.subject.rfc4514_string()}")
    print(f"  attribute authority: {store.public_params!r}")
    return 0


def _add_identity(args: argparse.Namespace) -> int:
    from iomt.crypto.keystore import Keystore

    info = Keystore.open(args.keystore).add_identity(
        args.name,
        uri=args.uri,
        algorithm=args.algorithm,
        validity_days=args.days,
        roles=args.role,
        capability=args.capability,
    )
    print(f"added identity {info.name} ({info.algorithm}) {info.uri}")
    print(f"  role {info.role_text}")
    print(f"  fingerprint {info.fingerprint}")
    return 0


def _set_role(args: argparse.Namespace) -> int:
    from iomt.crypto.keystore import Keystore

    store = Keystore.open(args.keystore)
    before = store.info(args.name)
    info = store.set_roles(args.name, args.role, args.capability)
    print(f"re-issued {info.name}: role {info.role_text} (was {before.role_text})")
    print(f"  new serials {' '.join(str(s) for s in info.serials)}")
    print(f"  revoked as superseded: {' '.join(str(s) for s in before.serials)}")
    return 0


def _info_doc(info: Any) -> dict[str, Any]:
    return {**asdict(info), "serials": [str(s) for s in info.serials], "role": info.role_text}


def _show(args: argparse.Namespace) -> int:
    from iomt.crypto.keystore import Keystore
    from iomt.crypto.roles import CAPABILITY_OIDS, ROLE_OIDS, parse_roles, roles_of

    store = Keystore.open(args.keystore)
    info = store.info(args.name)
    certified = roles_of(store.certificate(args.name))
    oids = [
        f"{ROLE_OIDS[r].dotted_string} ({r.value})"
        for r in sorted(parse_roles(info.roles), key=lambda r: ROLE_OIDS[r].dotted_string)
    ]
    if certified.capability is not None:
        oid = CAPABILITY_OIDS[certified.capability].dotted_string
        oids.append(f"{oid} (capability {certified.capability.name.lower()})")
    if args.json:
        print(json.dumps({**_info_doc(info), "extended_key_usage": oids}, indent=2))
        return 0
    rows = [
        ("name", info.name),
        ("uri", info.uri),
        ("role", info.role_text),
        ("extended key usage", "\n".join(oids) or "-"),
        ("algorithm", info.algorithm),
        ("attributes", " ".join(info.attributes) or "-"),
        ("serials", " ".join(str(s) for s in info.serials)),
        ("fingerprint", info.fingerprint),
        ("expires", info.not_after),
        ("status", "revoked" if info.revoked else "ok"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        lines = str(value).split("\n")
        print(f"{key:<{width}}  {lines[0]}")
        for more in lines[1:]:
            print(f"{'':<{width}}  {more}")
    return 0


def _add_attributes(args: argparse.Namespace) -> int:
    from iomt.crypto.keystore import Keystore

    store = Keystore.open(args.keystore)
    key = store.add_attributes(args.name, args.attributes)
    print(f"issued attribute key to {args.name}: {', '.join(sorted(key.attributes))}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from iomt.crypto.keystore import Keystore
    from iomt.crypto.revocation import RevocationKind

    store = Keystore.open(args.keystore)
    if args.identity:
        kind, value = RevocationKind.IDENTITY, args.identity
    elif args.serial:
        kind, value = RevocationKind.CERTIFICATE, args.serial
    elif args.key:
        kind, value = RevocationKind.KEY, args.key
    else:
        kind, value = RevocationKind.TOKEN, args.token
    entry = store.revoke(kind, value, reason=args.reason)
    print(f"revoked {entry.kind.value} {entry.value} ({entry.reason})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from iomt.crypto.keystore import Keystore

    store = Keystore.open(args.keystore)
    infos = store.identities()
    if args.json:
        doc = {
            "facility": store.facility,
            "identities": [_info_doc(i) for i in infos],
            "revocations": [
                {"kind": e.kind.value, "value": e.value, "reason": e.reason, "at": e.revoked_at}
                for e in store.revocations
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"keystore {store.root} — facility {store.facility}")
    for col in (
        "name",
        "uri",
        "role",
        "algorithm",
        "attributes",
        "fingerprint",
        "expires",
        "status",
    ):
        table.add_column(col)
    for i in infos:
        table.add_row(
            i.name,
            i.uri,
            i.role_text,
            i.algorithm,
            " ".join(i.attributes) or "-",
            i.fingerprint[:16],
            i.not_after[:10],
            "[red]revoked[/red]" if i.revoked else "ok",
        )
    Console().print(table)
    if len(store.revocations):
        print(f"{len(store.revocations)} revocation entries (see --json)")
    return 0
