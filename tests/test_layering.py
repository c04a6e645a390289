"""The layering of README.md ("Layers"), checked on the source tree.

The files under ``src/iomt`` are parsed, not imported, so what is checked is this tree and
never an installed copy, and every import statement counts: at module level, inside
functions and classes, under ``if TYPE_CHECKING:``, relative ones, and
``importlib.import_module("<constant>")``. The rules:

1. **Layers.** A module imports its own package, and packages of layers below its own;
   nothing upward, and nothing sideways between independent packages of one layer:

       iomt.__main__
       iomt.cli                          commands
       iomt.experiments                  workloads, reports
       iomt.launch | iomt.capture        supervisor, ROS 2 launch | bags, audit
       iomt.topology                     launch plans as data
       iomt.nodes                        DDS nodes wiring core objects to topics/services
       iomt.runtime                      Context, Node, Executor, QoS, services, graph
       iomt.core                         sans-IO protocol state machines
       iomt.ledger                       the log (signed with crypto's keys, crypto's encoding)
       iomt.crypto                       security techniques, the one encoder of signed bytes
       iomt.msg                          interface files and generated wire types
       iomt.resources, iomt.errors, iomt shared files, the error hierarchy

2. **DDS.** Only ``iomt.runtime`` uses cyclonedds (and ``iomt.msg``, whose generated wire
   types are cyclonedds IdlStructs).
   **Cryptography.** Only ``iomt.crypto`` imports pyca/cryptography: the protocol layers
   reach primitives, keys and signatures through it, so one package holds every use.
3. **Sans-IO.** ``iomt.core``, ``iomt.crypto`` and ``iomt.ledger`` import neither
   cyclonedds nor ``iomt.msg`` (they speak in dataclasses and bytes; nodes convert at the
   boundary), and do no IO: no sockets, processes, signals, threads (a ``threading.Lock``
   guarding state is not IO; starting a thread is), no file system (``open()``, ``os``'s
   file and process functions, ``Path`` reads and writes, sqlite3, tempfile, shutil ...).
4. **No import cycles** between modules.

Where the code breaks a rule today, the exception is listed below with a one-line reason:
it is the to-do list, and an entry that no longer matches anything fails
``test_allow_lists_have_no_stale_entries``, so the lists only shrink.
``test_the_checker_catches_*`` prove the checker finds each kind of violation.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: list[tuple[str, ...]] = [  # top first; packages in one tuple are independent
    ("iomt.__main__",),
    ("iomt.cli",),
    ("iomt.experiments",),
    ("iomt.launch", "iomt.capture"),
    ("iomt.topology",),
    ("iomt.nodes",),
    ("iomt.runtime",),
    ("iomt.core",),
    ("iomt.ledger",),
    ("iomt.crypto",),
    ("iomt.msg",),
    ("iomt.resources",),
    ("iomt.errors",),
    ("iomt",),
]
DDS_USERS = ("iomt.runtime", "iomt.msg")
CRYPTOGRAPHY_USERS = ("iomt.crypto",)
SANS_IO = ("iomt.core", "iomt.crypto", "iomt.ledger")

# Modules whose import means IO (or DDS) in a sans-IO layer.
IO_MODULES = {
    "cyclonedds": "dds",
    "socket": "network",
    "socketserver": "network",
    "ssl": "network",
    "http": "network",
    "urllib": "network",
    "asyncio": "network",
    "selectors": "network",
    "select": "network",
    "subprocess": "process",
    "multiprocessing": "process",
    "signal": "process",
    "concurrent": "thread",
    "_thread": "thread",
    "sqlite3": "file",
    "apsw": "file",
    "tempfile": "file",
    "shutil": "file",
    "mmap": "file",
    "fcntl": "file",
    "glob": "file",
    "fileinput": "file",
}
# threading is allowed for locks only; os for what touches neither files nor processes.
THREADING_ALLOWED = {"Lock", "RLock"}
OS_ALLOWED = {"urandom", "PathLike", "fspath", "fsencode", "fsdecode", "sep", "linesep"}
PATH_IO_METHODS = {
    "read_text",
    "write_text",
    "read_bytes",
    "write_bytes",
    "mkdir",
    "touch",
    "unlink",
    "rmdir",
    "iterdir",
    "glob",
    "rglob",
    "exists",
    "is_file",
    "is_dir",
    "stat",
    "chmod",
    "symlink_to",
    "hardlink_to",
    "rename",
    "samefile",
}

# -- the allow-lists: today's exceptions, each with its reason --------------------------------

ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    # (importing module, imported package): reason
}
ALLOWED_DDS: dict[str, str] = {}
ALLOWED_CRYPTOGRAPHY: dict[str, str] = {
    # module: reason
}
ALLOWED_IO: dict[tuple[str, str], str] = {
    # (module, kind of IO): reason
    ("iomt.crypto.keystore", "file"): (
        "the facility keystore is a directory of files (as SROS2's); this module is the "
        "crypto layer's only file handling"
    ),
    ("iomt.ledger.sqlite", "file"): (
        "the ledger's SQLite storage backend; the in-memory LedgerStorage is the pure one"
    ),
}
ALLOWED_CYCLES: dict[frozenset[str], str] = {}


# -- the checker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    line: int
    typing_only: bool = False  # under ``if TYPE_CHECKING:``


@dataclass(frozen=True)
class Violation:
    rule: str  # "upward", "sideways", "dds", "cryptography", "msg", "io:<kind>", "cycle"
    module: str
    detail: str
    line: int = 0

    def __str__(self) -> str:
        where = f"{self.module}:{self.line}" if self.line else self.module
        return f"[{self.rule}] {where}: {self.detail}"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules(root: Path) -> dict[str, Path]:
    return {module_name(root, p): p for p in sorted((root / "iomt").rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, tree: ast.AST, known: Iterable[str]) -> Iterator[Import]:
    """Every import in ``tree``, wherever it stands. ``from a import b`` imports the module
    ``a.b`` when there is one (as grimp, import-linter's graph, counts it), else ``a``."""
    known = set(known)
    is_package = path.name == "__init__.py"
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, id(node) in typing_only)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            for sub in submodules:
                yield Import(module, sub, node.lineno, id(node) in typing_only)
            if len(submodules) < len(names):  # a name from the package's own namespace
                yield Import(module, target, node.lineno, id(node) in typing_only)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(module, node.args[0].value, node.lineno)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def package_of(module: str) -> tuple[int, str] | None:
    """(layer index, package) of an iomt module; None outside iomt."""
    best: tuple[int, str] | None = None
    for index, layer in enumerate(LAYERS):
        for package in layer:
            if (module == package or module.startswith(package + ".")) and (
                best is None or len(package) > len(best[1])
            ):
                best = (index, package)
    return best


def _within(module: str, packages: Iterable[str]) -> str | None:
    for package in packages:
        if module == package or module.startswith(package + "."):
            return package
    return None


def import_violations(imports: Iterable[Import]) -> Iterator[Violation]:
    for imp in imports:
        top = imp.target.split(".")[0]
        if top == "cyclonedds" and not _within(imp.importer, DDS_USERS):
            yield Violation("dds", imp.importer, f"imports {imp.target}", imp.line)
        if top == "cryptography" and not _within(imp.importer, CRYPTOGRAPHY_USERS):
            yield Violation("cryptography", imp.importer, f"imports {imp.target}", imp.line)
        if top != "iomt":
            continue
        here, there = package_of(imp.importer), package_of(imp.target)
        if here is None or there is None or here[1] == there[1]:
            continue
        if _within(imp.importer, SANS_IO) and _within(imp.target, ("iomt.msg",)):
            yield Violation("msg", imp.importer, f"imports {imp.target}", imp.line)
        if there[0] < here[0]:
            yield Violation("upward", imp.importer, f"imports {imp.target} ({there[1]})", imp.line)
        elif there[0] == here[0]:
            yield Violation(
                "sideways", imp.importer, f"imports {imp.target} ({there[1]})", imp.line
            )


def io_violations(module: str, tree: ast.AST) -> Iterator[Violation]:
    """IO in a sans-IO module: imports of IO modules, and calls that touch files."""
    threading_names: set[str] = set()  # local names bound to the threading module
    os_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in IO_MODULES:
                    yield Violation(
                        f"io:{IO_MODULES[top]}", module, f"imports {alias.name}", node.lineno
                    )
                elif alias.name == "threading":
                    threading_names.add(alias.asname or "threading")
                elif alias.name == "os":
                    os_names.add(alias.asname or "os")
                elif alias.name in ("io", "pathlib"):
                    pass  # BytesIO, PurePath arithmetic: pure; IO calls are caught below
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            top = node.module.split(".")[0]
            if top in IO_MODULES:
                yield Violation(
                    f"io:{IO_MODULES[top]}", module, f"imports from {node.module}", node.lineno
                )
            names = {a.name for a in node.names}
            if node.module == "threading" and names - THREADING_ALLOWED:
                bad = sorted(names - THREADING_ALLOWED)
                yield Violation("io:thread", module, f"imports threading.{bad}", node.lineno)
            if node.module == "os" and names - OS_ALLOWED:
                yield Violation(
                    "io:file", module, f"imports os.{sorted(names - OS_ALLOWED)}", node.lineno
                )
            if node.module == "io" and "open" in names:
                yield Violation("io:file", module, "imports io.open", node.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in threading_names and node.attr not in THREADING_ALLOWED:
                yield Violation("io:thread", module, f"uses threading.{node.attr}", node.lineno)
            if node.value.id in os_names and node.attr not in OS_ALLOWED:
                yield Violation("io:file", module, f"uses os.{node.attr}", node.lineno)
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            yield Violation("io:file", module, "calls open()", node.lineno)
        elif isinstance(func, ast.Attribute):
            if func.attr in PATH_IO_METHODS:
                yield Violation("io:file", module, f"calls .{func.attr}()", node.lineno)
            elif func.attr == "open" and isinstance(func.value, ast.Name) and func.value.id == "io":
                yield Violation("io:file", module, "calls io.open()", node.lineno)
            elif (
                func.attr == "open"
                and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name)
                and func.value.func.id in ("Path", "PurePath", "PosixPath")
            ):
                yield Violation("io:file", module, "calls Path(...).open()", node.lineno)


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[frozenset[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(frozenset(component))
    return out


@dataclass
class Analysis:
    imports: list[Import]
    violations: list[Violation]
    cycles: list[frozenset[str]]  # counting every import
    runtime_cycles: list[frozenset[str]]  # leaving out ``if TYPE_CHECKING:`` imports


def analyse(root: Path) -> Analysis:
    modules = source_modules(root)
    imports: list[Import] = []
    violations: list[Violation] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = list(imports_of(module, path, tree, modules))
        imports += found
        violations += import_violations(found)
        if _within(module, SANS_IO):
            violations += io_violations(module, tree)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    run_edges: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        if imp.target in modules and imp.target != imp.importer:
            edges[imp.importer].add(imp.target)
            if not imp.typing_only:
                run_edges[imp.importer].add(imp.target)
    found_cycles = cycles(edges)
    found_runtime = cycles(run_edges)
    for c in found_cycles:
        typing = "" if any(r <= c for r in found_runtime) else " (through TYPE_CHECKING only)"
        violations.append(Violation("cycle", " <-> ".join(sorted(c)), "import cycle" + typing))
    return Analysis(imports, violations, found_cycles, found_runtime)


def allowed(v: Violation) -> bool:
    if v.rule in ("upward", "sideways"):
        target = v.detail.rsplit("(", 1)[-1].rstrip(")")
        return (v.module, target) in ALLOWED_UPWARD
    if v.rule == "dds":
        return v.module in ALLOWED_DDS
    if v.rule == "cryptography":
        return v.module in ALLOWED_CRYPTOGRAPHY
    if v.rule.startswith("io:"):
        return (v.module, v.rule[3:]) in ALLOWED_IO
    if v.rule == "cycle":
        return frozenset(v.module.split(" <-> ")) in ALLOWED_CYCLES
    return False


@pytest.fixture(scope="module")
def tree() -> Analysis:
    return analyse(SRC)


# -- the source tree -------------------------------------------------------------------------


def test_the_tree_checked_is_this_one(tree: Analysis) -> None:
    modules = source_modules(SRC)
    assert "iomt.core.conversion" in modules and "iomt.runtime.node" in modules
    assert len(modules) > 100
    assert all(package_of(m) is not None for m in modules), "a module outside every layer"


def test_no_layer_imports_upward_or_sideways(tree: Analysis) -> None:
    bad = [v for v in tree.violations if v.rule in ("upward", "sideways") and not allowed(v)]
    assert not bad, "\n".join(map(str, bad))


def test_runtime_is_the_only_cyclonedds_user(tree: Analysis) -> None:
    bad = [v for v in tree.violations if v.rule == "dds" and not allowed(v)]
    assert not bad, "\n".join(map(str, bad))


def test_crypto_is_the_only_cryptography_user(tree: Analysis) -> None:
    bad = [v for v in tree.violations if v.rule == "cryptography" and not allowed(v)]
    assert not bad, "\n".join(map(str, bad))


def test_sans_io_layers_use_no_dds_wire_types_or_io(tree: Analysis) -> None:
    bad = [
        v
        for v in tree.violations
        if (v.rule == "msg" or v.rule.startswith("io:")) and not allowed(v)
    ]
    assert not bad, "\n".join(map(str, bad))


def test_no_new_import_cycles(tree: Analysis) -> None:
    bad = [v for v in tree.violations if v.rule == "cycle" and not allowed(v)]
    assert not bad, "\n".join(map(str, bad))


def test_runtime_cycles_are_only_allowed_ones(tree: Analysis) -> None:
    """Leaving TYPE_CHECKING out, the runtime package has no cycle at all, and the other
    cycles are the listed ones."""
    runtime = {c for c in tree.runtime_cycles if any(m.startswith("iomt.runtime.") for m in c)}
    assert not runtime, runtime
    assert set(tree.runtime_cycles) <= set(ALLOWED_CYCLES), tree.runtime_cycles


def test_allow_lists_have_no_stale_entries(tree: Analysis) -> None:
    """An exception that was fixed must leave its list (the lists only shrink)."""
    seen_upward = {
        (v.module, v.detail.rsplit("(", 1)[-1].rstrip(")"))
        for v in tree.violations
        if v.rule in ("upward", "sideways")
    }
    seen_dds = {v.module for v in tree.violations if v.rule == "dds"}
    seen_cryptography = {v.module for v in tree.violations if v.rule == "cryptography"}
    seen_io = {(v.module, v.rule[3:]) for v in tree.violations if v.rule.startswith("io:")}
    stale = (
        [f"ALLOWED_UPWARD {k}" for k in ALLOWED_UPWARD if k not in seen_upward]
        + [f"ALLOWED_DDS {k}" for k in ALLOWED_DDS if k not in seen_dds]
        + [f"ALLOWED_CRYPTOGRAPHY {k}" for k in ALLOWED_CRYPTOGRAPHY if k not in seen_cryptography]
        + [f"ALLOWED_IO {k}" for k in ALLOWED_IO if k not in seen_io]
        + [f"ALLOWED_CYCLES {sorted(k)}" for k in ALLOWED_CYCLES if k not in tree.cycles]
    )
    assert not stale, "fixed, remove from the allow-list:\n" + "\n".join(stale)


def test_function_level_and_type_checking_imports_are_seen(tree: Analysis) -> None:
    # Imports that only such a scan sees; seeing them proves the scan does.
    seen = {(i.importer, i.target, i.typing_only) for i in tree.imports}
    assert ("iomt.nodes.device", "iomt.nodes.biomt_device", False) in seen  # inside a method
    assert ("iomt.nodes.device", "iomt.nodes.biomt_device", True) in seen  # TYPE_CHECKING
    assert ("iomt.runtime.container", "iomt.runtime.rclpy_runtime", False) in seen  # function


# -- the checker, on made-up trees -----------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Analysis:
    for name, text in {"iomt/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return analyse(tmp_path)


def _rules(a: Analysis) -> set[tuple[str, str]]:
    return {(v.rule, v.module) for v in a.violations}


def test_the_checker_catches_upward_imports_wherever_they_stand(tmp_path: Path) -> None:
    a = _tree(
        tmp_path,
        {
            "iomt/core/__init__.py": "",
            "iomt/core/a.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from iomt.nodes import device
            """,
            "iomt/core/b.py": """
                def f():
                    import iomt.runtime.node
            """,
            "iomt/core/c.py": "from ..cli import main\n",
            "iomt/crypto/__init__.py": "from iomt.ledger import x\n",
            "iomt/launch/__init__.py": "from iomt.capture import y\n",
            "iomt/capture/__init__.py": "",
            "iomt/runtime/__init__.py": "",
            "iomt/runtime/node.py": "",
            "iomt/nodes/__init__.py": "",
            "iomt/nodes/device.py": "",
            "iomt/cli/__init__.py": "",
            "iomt/ledger/__init__.py": "",
        },
    )
    assert {
        ("upward", "iomt.core.a"),
        ("upward", "iomt.core.b"),
        ("upward", "iomt.core.c"),
        ("upward", "iomt.crypto"),
        ("sideways", "iomt.launch"),
    } <= _rules(a)


def test_the_checker_catches_dds_and_io_in_the_sans_io_layers(tmp_path: Path) -> None:
    a = _tree(
        tmp_path,
        {
            "iomt/core/__init__.py": "",
            "iomt/core/a.py": "def f():\n    from cyclonedds.domain import DomainParticipant\n",
            "iomt/core/b.py": "def f(p):\n    with open(p, 'wb') as f:\n        f.write(b'')\n",
            "iomt/core/c.py": "import os\ndef f(fd):\n    os.fsync(fd)\n",
            "iomt/core/d.py": "from pathlib import Path\ndef f():\n    Path('x').write_text('y')\n",
            "iomt/core/e.py": "import threading\nt = threading.Thread(target=print)\n",
            "iomt/core/f.py": "import os, threading\nlock = threading.Lock()\nos.urandom(4)\n",
            "iomt/core/g.py": "import socket\n",
            "iomt/core/h.py": "from iomt.msg import Vitals\n",
            "iomt/msg/__init__.py": "import cyclonedds\n",
            "iomt/core/i.py": "def f():\n    from cryptography.hazmat.primitives import hashes\n",
            "iomt/crypto/__init__.py": "from cryptography import x509\n",
            "iomt/nodes/__init__.py": "import cyclonedds.idl\n",
            "iomt/ledger/__init__.py": "import sqlite3\n",
        },
    )
    rules = _rules(a)
    assert {
        ("dds", "iomt.core.a"),
        ("io:file", "iomt.core.b"),
        ("io:file", "iomt.core.c"),
        ("io:file", "iomt.core.d"),
        ("io:thread", "iomt.core.e"),
        ("io:network", "iomt.core.g"),
        ("msg", "iomt.core.h"),
        ("dds", "iomt.nodes"),
        ("io:file", "iomt.ledger"),
        ("cryptography", "iomt.core.i"),
    } <= rules
    assert not {r for r in rules if r[1] in ("iomt.core.f", "iomt.msg")}  # a lock, urandom
    assert not {r for r in rules if r[1] == "iomt.crypto"}  # crypto is where it belongs


def test_the_checker_catches_a_new_cycle(tmp_path: Path) -> None:
    a = _tree(
        tmp_path,
        {
            "iomt/nodes/__init__.py": "",
            "iomt/nodes/a.py": "from iomt.nodes import b\n",
            "iomt/nodes/b.py": "def f():\n    from iomt.nodes.c import x\n",
            "iomt/nodes/c.py": "from . import a\n",
        },
    )
    assert a.cycles == [frozenset({"iomt.nodes.a", "iomt.nodes.b", "iomt.nodes.c"})]
    assert not allowed(next(v for v in a.violations if v.rule == "cycle"))
