"""One canonical encoder: every signed or MACed byte string is framed by iomt.crypto.encoding.

A second copy of ``lp32`` or ``tag`` is a second place where a signature's input can drift,
so the source tree is scanned (parsed, not imported) for encoders defined anywhere else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from iomt.crypto.encoding import Reader, lp16, lp32, tag, u32
from iomt.errors import IomtError

SRC = Path(__file__).resolve().parents[2] / "src" / "iomt"
ENCODER = SRC / "crypto" / "encoding.py"
ENCODER_NAMES = {"lp16", "lp32", "tag"}
# Byte formats that are nobody's signed input, with the reason.
NOT_SIGNED = {
    SRC / "runtime" / "context.py": "ROS 2 ParticipantEntitiesInfo: little-endian CDR on DDS",
}


class _Err(IomtError):
    pass


def _len_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def hand_made_encoders(path: Path) -> list[str]:
    """Definitions of a length-prefix or tag encoder, and length prefixes built by hand
    (``struct.pack(">I", len(x))``, ``_U32.pack(len(x))``, ``len(x).to_bytes(4, ...)``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and (
            node.name in ENCODER_NAMES or node.name.startswith("_lp")
        ):
            found.append(f"{path.name}:{node.lineno}: defines {node.name}()")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr == "pack" and any(_len_call(a) for a in node.args):
            found.append(f"{path.name}:{node.lineno}: packs a length by hand")
        if node.func.attr == "to_bytes" and _len_call(node.func.value):
            found.append(f"{path.name}:{node.lineno}: encodes a length by hand")
    return found


def test_the_crypto_encoding_is_the_only_encoder_of_lengths_and_tags() -> None:
    paths = [p for p in sorted(SRC.rglob("*.py")) if p != ENCODER and p not in NOT_SIGNED]
    found = [f for p in paths for f in hand_made_encoders(p)]
    assert not found, "use iomt.crypto.encoding (u32 for counts, lp32 for fields):\n" + "\n".join(
        found
    )
    assert all(hand_made_encoders(p) for p in NOT_SIGNED), "stale NOT_SIGNED entry"


def test_the_scan_finds_each_kind_of_hand_made_encoder(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "import struct\n"
        "def _lp(d):\n    return struct.pack('>I', len(d)) + d\n"
        "def tag(n):\n    return bytes([len(n)]) + n\n"
        "x = len(b'a').to_bytes(4, 'big')\n"
    )
    assert len(hand_made_encoders(src)) == 4
    assert not hand_made_encoders(ENCODER.parent / "primitives.py")


def test_known_answers_of_the_framing() -> None:
    # The bytes that tokens, sessions, transcripts, the BIoMT codec and the ledger sign.
    assert tag("iomt/x/v1") == b"\x09iomt/x/v1"
    assert lp32(b"ab") == b"\x00\x00\x00\x02ab"
    assert lp16(b"ab") == b"\x00\x02ab"
    assert u32(3) == b"\x00\x00\x00\x03"
    with pytest.raises(ValueError):
        tag("")
    with pytest.raises(ValueError):
        tag("x" * 256)


def test_the_reader_reads_what_the_framing_writes() -> None:
    r = Reader(tag("t") + lp32(b"body") + lp16(b"sig"), _Err)
    assert r.take(2) == b"\x01t" and r.lp32() == b"body" and r.lp16() == b"sig"
    r.end()
    with pytest.raises(_Err, match="truncated"):
        Reader(b"\x00\x00\x00\x05ab", _Err).lp32()
