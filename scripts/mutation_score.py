"""Which mutants scripts/mutation.sh runs, and the score per module (run from the repo root).

    python scripts/mutation_score.py modules              # the module keys, one a line
    python scripts/mutation_score.py names MODULE         # mutant names (or a glob) to run
    python scripts/mutation_score.py open MODULE          # names of its survivors (to re-run)
    python scripts/mutation_score.py report [MODULE ...]  # killed / survived / timeout, score
    python scripts/mutation_score.py survivors [MODULE]   # each survivor: line and diff

Each module is mutated in its own directory ``.mutation/<module>`` (symlinks to src, tests
and docs, and a pyproject.toml whose [tool.mutmut] names only that module and the tests it
runs with: ``TESTS``); mutmut 3.8.1 (requirements-mutation.txt) keeps its results in
``.mutation/<module>/mutants``. For
the bolster (its services' modules under core/biomt, ``BOLSTER``) only its *request checks*
count: the whole of the functions that only check (``CHECK_FUNCTIONS``), and in the request
handlers (``HANDLERS``) the statements that can refuse a request -- an ``if`` whose body
raises, a ``try`` whose handler raises a new error, a statement calling a checker
(``CHECK_CALLS``) or updating the replay counter. Equivalent
mutants are listed in docs/testing.md (section "Equivalent mutants"); they are left out of
the denominator and shown separately.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

import libcst as cst
from mutmut.mutation.diff_apply import get_diff_for_mutant, read_functions_from_index

BOLSTER = "src/iomt/core/biomt"

#: The bolster's request checks, by (module under ``BOLSTER``, class): the functions that
#: only check (every mutant counts) ...
CHECK_FUNCTIONS = {
    ("state.py", "BolsterState"): {"device", "active"},
    ("checks.py", "RequestChecks"): {
        "addressed",
        "fresh",
        "authenticate",
        "_verify",
        "once",
        "within_rate",
        "permit",
    },
    ("pair_keys.py", "PairKeys"): {"_authenticate", "_refusal", "status"},
}
#: ... and the request handlers (only the statements that can refuse count)
HANDLERS = {
    ("provisioner.py", "Provisioner"): {"provision", "_open_enrolment", "_verify", "_initialize"},
    ("records.py", "Records"): {"store", "_open_store", "serve_access", "serve_observe"},
    ("removal.py", "Removal"): {"remove"},
    ("pair_keys.py", "PairKeys"): {"setup_communication"},
    ("user_sessions.py", "SessionService"): {"request", "_open", "_attest", "_verify"},
    ("history.py", "History"): {"serve"},
}
CHECK_CALLS = {
    # the bolster's own checkers
    "active",
    "device",
    "addressed",
    "fresh",
    "authenticate",
    "once",  # the nonce cache
    "within_rate",
    "permit",
    "_open_enrolment",
    "_verify",
    "_open_store",
    "_authenticate",
    "_open",
    # the checks of what they use
    "verify",
    "check_mac",
    "check_status",
    "check_attestation",
    "require",
    "require_attested",
    "add",  # the nonce cache
    "open",  # the session record
    "open_sealed",
    "decrypt",
}

MODULES = {
    "listener": ["src/iomt/core/listener.py"],
    "conversion": ["src/iomt/core/conversion.py"],
    "registration": ["src/iomt/core/registration.py"],
    "publish": ["src/iomt/core/publish.py"],
    "handshake": ["src/iomt/core/handshake.py"],
    "tokens": ["src/iomt/crypto/tokens.py"],
    "sessions": ["src/iomt/crypto/sessions.py"],
    "merkle": ["src/iomt/ledger/merkle.py"],
    "audit": ["src/iomt/ledger/audit.py"],
    "bolster": sorted({f"{BOLSTER}/{module}" for module, _ in CHECK_FUNCTIONS | HANDLERS}),
}

SHARING_TESTS = [
    "tests/core",
    "tests/crypto",
    "tests/ledger",
    "--ignore=tests/ledger/test_crash.py",
]
LEDGER_TESTS = ["tests/ledger", "--ignore=tests/ledger/test_crash.py"]
#: The tests each module's mutants run with (mutmut then picks, per mutated function, the
#: ones that call it). The ledger's own suite for the ledger; the BIoMT suite for the bolster.
TESTS = {key: SHARING_TESTS for key in MODULES} | {
    "merkle": LEDGER_TESTS,
    "audit": LEDGER_TESTS,
    "bolster": ["tests/core/biomt"],
}
RUNS = Path(".mutation")
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "type check",
    None: "not run",
}
EQUIVALENT_DOC = Path("docs/testing.md")


def module_name(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def split_key(mutant: str) -> tuple[str | None, str]:
    """(class, function) of a mutant name such as ``m.xǁClassǁf__mutmut_3``."""
    local = mutant.partition("__mutmut_")[0].rpartition(".")[2]
    if "ǁ" in local:
        _, cls, func = local.split("ǁ")
        return cls, func
    return None, local.removeprefix("x_")


@dataclass
class Source:
    path: str
    text: str = ""
    tree: ast.Module = field(init=False)

    def __post_init__(self) -> None:
        self.text = Path(self.path).read_text()
        self.tree = ast.parse(self.text)

    def function_owner(self, cls: str) -> ast.ClassDef:
        (klass,) = (n for n in self.tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
        return klass

    def function(self, cls: str | None, name: str) -> ast.FunctionDef:
        body = self.tree.body
        if cls is not None:
            (klass,) = (n for n in body if isinstance(n, ast.ClassDef) and n.name == cls)
            body = klass.body
        (func,) = (n for n in body if isinstance(n, ast.FunctionDef) and n.name == name)
        return func


def mutant_line(source: Source, mutant: str) -> int:
    """The first line of the original file that ``mutant`` changes."""
    cls, name = split_key(mutant)
    func = source.function(cls, name)
    functions = read_functions_from_index(mutant, source.path)
    assert functions is not None, mutant
    orig, new = (cst.Module([f]).code.splitlines() for f in functions)
    first = next(
        i1
        for tag, i1, _, _, _ in SequenceMatcher(a=orig, b=new, autojunk=False).get_opcodes()
        if tag != "equal"
    )
    def_index = next(i for i, line in enumerate(orig) if line.lstrip().startswith("def "))
    return func.lineno + first - def_index


def _in_bolster(path: str, table: dict[tuple[str, str], set[str]]) -> dict[str, set[str]]:
    """Class -> functions of ``table`` in the bolster module at ``path``."""
    return {cls: fs for (module, cls), fs in table.items() if f"{BOLSTER}/{module}" == path}


def check_lines(source: Source) -> set[int]:
    """Lines of a bolster module whose mutants count as mutants of its request checks."""
    lines: set[int] = set()

    def span(node: ast.AST) -> range:
        return range(node.lineno, (node.end_lineno or node.lineno) + 1)  # type: ignore[attr-defined]

    def raises_new(nodes: list[ast.stmt]) -> bool:
        return any(
            isinstance(n, ast.Raise) and n.exc is not None for s in nodes for n in ast.walk(s)
        )

    def visit(stmts: list[ast.stmt]) -> None:
        for s in stmts:
            if isinstance(s, ast.If) and raises_new(s.body):
                lines.update(span(s))
                continue
            if isinstance(s, ast.Try) and any(raises_new(h.body) for h in s.handlers):
                lines.update(span(s))
                continue
            if isinstance(s, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
                lines.update(range(s.lineno, s.body[0].lineno))  # the header
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(s, block, []))
                for h in getattr(s, "handlers", []):
                    visit(h.body)
                continue
            calls = {
                n.func.attr
                for n in ast.walk(s)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            }
            if calls & CHECK_CALLS or "last_counter" in ast.unparse(s):
                lines.update(span(s))

    checks = _in_bolster(source.path, CHECK_FUNCTIONS)
    handlers = _in_bolster(source.path, HANDLERS)
    for cls in checks.keys() | handlers.keys():
        for func in source.function_owner(cls).body:
            if not isinstance(func, ast.FunctionDef):
                continue
            if func.name in checks.get(cls, ()):
                lines.update(span(func))
            elif func.name in handlers.get(cls, ()):
                visit(func.body)
    return lines


def run_dir(key: str) -> Path:
    """Where module ``key`` is mutated: its own pyproject (test selection) and ./mutants."""
    return RUNS / key


def pyproject(key: str) -> str:
    """The project's pyproject.toml with a [tool.mutmut] section for module ``key`` only."""
    text = Path("pyproject.toml").read_text()
    head, _, rest = text.partition("[tool.mutmut]")
    tail = rest[rest.find("\n[") :] if "\n[" in rest else ""
    section = (
        "[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {json.dumps(MODULES[key])}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(TESTS[key])}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        'also_copy = ["docs"]\n'
    )
    return head + section + tail


def load_results(path: str) -> dict[str, int | None]:
    meta = Path("mutants") / (path + ".meta")
    if not meta.exists():
        return {}
    data = json.loads(meta.read_text())
    return dict(data["exit_code_by_key"])


def diff_of(mutant: str, path: str) -> str:
    return get_diff_for_mutant(mutant, path=path)


def lines_of(source: Source, mutants: list[str]) -> dict[str, int]:
    """``mutant_line`` of each mutant, cached in ./mutants per version of the source."""
    cache = Path("mutants") / (source.path + ".lines.json")
    digest = hashlib.sha256(source.text.encode()).hexdigest()
    known: dict[str, int] = {}
    if cache.exists():
        data = json.loads(cache.read_text())
        if data.get("source") == digest:
            known = data["lines"]
    missing = [m for m in mutants if m not in known]
    known.update({m: mutant_line(source, m) for m in missing})
    if missing:
        cache.write_text(json.dumps({"source": digest, "lines": known}))
    return known


@contextlib.contextmanager
def inside(key: str) -> Iterator[None]:
    """Work in module ``key``'s run directory (its ./mutants), if it has one."""
    here = Path.cwd()
    target = run_dir(key)
    if target.is_dir():
        os.chdir(target)
    try:
        yield
    finally:
        os.chdir(here)


def selected(key: str) -> dict[str, int | None]:
    """The mutants of module ``key`` that count, with their exit codes."""
    with inside(key):
        return _selected(key)


def _selected(key: str) -> dict[str, int | None]:
    return {m: code for path in MODULES[key] for m, code in _selected_in(key, path).items()}


def _selected_in(key: str, path: str) -> dict[str, int | None]:
    results = load_results(path)
    if key != "bolster":
        return results
    source = Source(path)
    wanted = check_lines(source)
    functions = {
        (cls, f)
        for table in (CHECK_FUNCTIONS, HANDLERS)
        for cls, fs in _in_bolster(path, table).items()
        for f in fs
    }
    candidates = [m for m in results if split_key(m) in functions]
    line = lines_of(source, candidates)
    return {m: results[m] for m in candidates if line[m] in wanted}


def equivalents() -> dict[str, str]:
    """Mutant name -> why, from the docs' table of equivalent mutants."""
    if not EQUIVALENT_DOC.exists():
        return {}
    text = EQUIVALENT_DOC.read_text()
    section = text.partition("### Equivalent mutants")[2].partition("\n## ")[0]
    section = section.partition("\n### ")[0]
    out = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) >= 5 and "__mutmut_" in cells[2]:
            out[cells[2].strip("`")] = cells[4]
    return out


def report(keys: list[str]) -> None:
    eq = equivalents()
    print(
        f"{'module':<13} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} "
        f"{'no tests':>8} {'equiv.':>6} {'not run':>7} {'score':>7}"
    )
    for key in keys:
        counts: dict[str, int] = {}
        for mutant, code in selected(key).items():
            status = "equivalent" if mutant in eq else STATUS.get(code, "suspicious")
            counts[status] = counts.get(status, 0) + 1
        total = sum(counts.values())
        caught = counts.get("killed", 0) + counts.get("timeout", 0)
        judged = total - counts.get("equivalent", 0) - counts.get("not run", 0)
        score = f"{100 * caught / judged:.1f} %" if judged else "-"
        print(
            f"{key:<13} {total:>7} {counts.get('killed', 0):>6} {counts.get('timeout', 0):>7} "
            f"{counts.get('survived', 0) + counts.get('suspicious', 0):>8} "
            f"{counts.get('no tests', 0):>8} {counts.get('equivalent', 0):>6} "
            f"{counts.get('not run', 0):>7} {score:>7}"
        )


def survivors(keys: list[str]) -> None:
    eq = equivalents()
    for key in keys:
        with inside(key):
            _survivors(key, eq)


def _survivors(key: str, eq: dict[str, str]) -> None:
    for path in MODULES[key]:
        source = Source(path)
        for mutant, code in _selected_in(key, path).items():
            status = STATUS.get(code, "suspicious")
            if status in ("killed", "timeout") or mutant in eq:
                continue
            diff = diff_of(mutant, path)
            print(f"## {mutant} [{status}] line {mutant_line(source, mutant)}")
            print("\n".join(line for line in diff.splitlines()[2:] if line[:1] in "-+"))


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path.cwd()))
    command, *args = argv or ["report"]
    keys = args or list(MODULES)
    if command == "modules":
        print("\n".join(MODULES))
    elif command == "names":
        (key,) = args
        if key == "bolster":
            print("\n".join(sorted(selected(key))))
        else:
            print("\n".join(module_name(path) + ".*" for path in MODULES[key]))
    elif command == "open":
        eq = equivalents()
        print(
            "\n".join(
                m
                for key in keys
                for m, code in selected(key).items()
                if m not in eq and STATUS.get(code, "suspicious") not in ("killed", "timeout")
            )
        )
    elif command == "pyproject":
        (key,) = args
        print(pyproject(key), end="")
    elif command == "report":
        report(keys)
    elif command == "survivors":
        survivors(keys)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
