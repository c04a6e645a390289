"""``iomt interface list | show TYPE`` — what ``ros2 interface list/show`` print, for iomt.

Lists every interface iomt speaks (its own ``msg/``/``srv/`` and the vendored ROS 2 core types
it nests or publishes) and shows one: the interface text with nested message types expanded
beneath their field, one tab per level. Comments of the shown type are kept and those of
nested types dropped, as ``ros2 interface show`` does (``--all-comments``, ``--no-comments``).
``--dds`` adds the DDS type names and RIHS01 hashes a ROS 2 peer matches on.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from iomt.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from iomt.msg import MessageInfo, ServiceInfo

_PRIMITIVES = frozenset({
    "bool", "byte", "char", "float32", "float64", "string", "wstring",
    "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
})  # fmt: skip
_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_/]*)(?:<=\d+)?(?:\[[^\]]*\])?\s+[a-z][a-z0-9_]*\b")
_COMMENTS = ("default", "all", "none")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "interface",
        help="list and show the ROS 2 interfaces iomt speaks",
        description="Show information about the ROS 2 interfaces (msg/srv) iomt speaks.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    list_parser = verbs.add_parser("list", help="list all interface types")
    only = list_parser.add_mutually_exclusive_group()
    only.add_argument("-m", "--only-msgs", action="store_true", help="only messages")
    only.add_argument("-s", "--only-srvs", action="store_true", help="only services")
    list_parser.set_defaults(func=_list)

    show_parser = verbs.add_parser("show", help="output an interface definition")
    show_parser.add_argument("type", help='interface type, e.g. "iomt_interfaces/msg/Vitals"')
    comments = show_parser.add_mutually_exclusive_group()
    comments.add_argument(
        "--all-comments", action="store_true", help="also show comments of nested types"
    )
    comments.add_argument("--no-comments", action="store_true", help="show no comments")
    show_parser.add_argument(
        "--dds", action="store_true", help="first print DDS type names and RIHS01 type hashes"
    )
    show_parser.set_defaults(func=_show)


def _list(args: argparse.Namespace) -> int:
    import iomt.msg

    print(
        format_list(iomt.msg.all_interfaces(), msgs=not args.only_srvs, srvs=not args.only_msgs),
        end="",
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    import iomt.msg

    comments = "all" if args.all_comments else "none" if args.no_comments else "default"
    info = _lookup(args.type.strip())
    if args.dds:
        print(format_dds(info), end="")
    print(format_show(info, lambda n: iomt.msg.message_info(n).text, comments=comments), end="")
    return 0


def _lookup(name: str) -> MessageInfo | ServiceInfo:
    import iomt.msg

    try:
        return iomt.msg.message_info(name)
    except ConfigurationError:
        pass
    try:
        return iomt.msg.service_info(name)
    except ConfigurationError:
        raise ConfigurationError(
            f"unknown interface type {name!r} (see `iomt interface list`)"
        ) from None


def format_list(
    interfaces: Iterable[MessageInfo | ServiceInfo], *, msgs: bool = True, srvs: bool = True
) -> str:
    """``ros2 interface list`` layout: a heading per kind, one type per indented line."""
    by_kind: dict[str, list[str]] = {"msg": [], "srv": []}
    for info in interfaces:
        by_kind["srv" if "/srv/" in info.name else "msg"].append(info.name)
    out: list[str] = []
    for kind, heading, wanted in (("msg", "Messages", msgs), ("srv", "Services", srvs)):
        if wanted:
            out.append(f"{heading}:\n")
            out += [f"    {name}\n" for name in sorted(by_kind[kind])]
    return "".join(out)


def format_dds(info: MessageInfo | ServiceInfo) -> str:
    """The names a DDS/ROS 2 peer sees: DDS type names, topics' type hashes."""
    from iomt.msg import ServiceInfo

    parts = [info.request, info.response] if isinstance(info, ServiceInfo) else [info]
    lines = [f"# ros type:  {info.name}\n"]
    for part in parts:
        lines.append(f"# dds type:  {part.dds_name}\n")
        lines.append(f"# type hash: {part.type_hash}\n")
    return "".join(lines)


def format_show(
    info: MessageInfo | ServiceInfo,
    text_of: Callable[[str], str],
    *,
    comments: str = "default",
) -> str:
    """The interface text with nested message types expanded (``ros2 interface show``)."""
    if comments not in _COMMENTS:
        raise ConfigurationError(f"comments must be one of {_COMMENTS}")
    package = info.name.split("/", 1)[0]
    lines = _expand(info.text, package, text_of, depth=0, comments=comments)
    return "".join(line + "\n" for line in lines)


def _expand(
    text: str, package: str, text_of: Callable[[str], str], *, depth: int, comments: str
) -> list[str]:
    keep_comments = comments == "all" or (comments == "default" and depth == 0)
    out: list[str] = []
    for raw in text.rstrip("\n").splitlines():
        line = raw if keep_comments else raw.split("#", 1)[0].rstrip()
        if depth and not line.strip():
            continue  # nested types: no blank or comment-only lines
        out.append("\t" * depth + line)
        nested = _nested_type(raw, package)
        if nested is not None:
            nested_package = nested.split("/", 1)[0]
            out += _expand(
                text_of(nested), nested_package, text_of, depth=depth + 1, comments=comments
            )
    return out


def _nested_type(line: str, package: str) -> str | None:
    code = line.split("#", 1)[0]
    if "=" in code or code.strip() == "---":
        return None  # a constant or the service separator
    match = _FIELD.match(code)
    if match is None or match.group(1) in _PRIMITIVES:
        return None
    name = match.group(1)
    parts = name.split("/")
    if len(parts) == 1:
        return f"{package}/msg/{name}"
    return f"{parts[0]}/msg/{parts[-1]}"
