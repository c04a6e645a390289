#!/usr/bin/env bash
# Mutation testing of the security-critical modules with mutmut (pinned in
# requirements-mutation.txt; docs/testing.md, section "Mutation testing").
#
#   scripts/mutation.sh                 # every module, one after the other
#   scripts/mutation.sh tokens audit    # only these modules (keys: scripts/mutation_score.py modules)
#   scripts/mutation.sh --report [M]    # the score table of the last runs; runs nothing
#   scripts/mutation.sh --survivors [M] # each surviving mutant with its line and diff
#   scripts/mutation.sh --rerun [M ...] # run only the survivors again (after adding tests)
#
# Each module runs in .mutation/<module> (git-ignored): symlinks to src/, tests/ and docs/
# and a pyproject.toml whose [tool.mutmut] names that module and the tests it runs with.
# mutmut copies them into .mutation/<module>/mutants, runs those tests once to learn which
# test calls which function, then runs every mutant with only those tests, in forked
# workers (MUTATION_JOBS, default 2). Results are cached there; delete .mutation to start
# over. Not part of scripts/test.sh: a whole run takes over an hour here (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || scripts/bootstrap.sh
if ! .venv/bin/mutmut --version 2>/dev/null | grep -q "3.8.1"; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
    -r requirements-mutation.txt
fi

score() { .venv/bin/python scripts/mutation_score.py "$@"; }
jobs=${MUTATION_JOBS:-2}

case "${1:-}" in
  --report) shift; score report "$@"; exit 0 ;;
  --survivors) shift; score survivors "$@"; exit 0 ;;
  --rerun) rerun=1; shift ;;
  *) rerun=0 ;;
esac
if [ $# -gt 0 ]; then modules=("$@"); else mapfile -t modules < <(score modules); fi

prepare() {  # the module's run directory
  local dir=".mutation/$1"
  mkdir -p "$dir"
  for d in src tests docs; do ln -sfn "../../$d" "$dir/$d"; done
  score pyproject "$1" > "$dir/pyproject.toml"
}

mutmut_in() {  # module, mutant names...
  local module=$1; shift
  (cd ".mutation/$module" && ../../.venv/bin/mutmut run --max-children "$jobs" "$@") \
    > ".mutation/$module.log" 2>&1 || { tail -n 40 ".mutation/$module.log"; exit 1; }
}

for module in "${modules[@]}"; do
  start=$(date +%s)
  prepare "$module"
  if [ "$rerun" = 1 ]; then
    mapfile -t names < <(score open "$module")
    [ ${#names[@]} -gt 0 ] || continue
    echo "== $module: re-running ${#names[@]} surviving mutant(s)"
  else
    if [ "$module" = bolster ] && [ ! -f .mutation/bolster/mutants/src/iomt/core/biomt/state.py.meta ]; then
      # the names of the bolster's check mutants are read from the generated mutants
      mutmut_in bolster "iomt.core.biomt.state.xǁBolsterStateǁdevice__mutmut_*"
    fi
    mapfile -t names < <(score names "$module")
    echo "== $module"
  fi
  mutmut_in "$module" "${names[@]}"
  echo "   $(($(date +%s) - start)) s (log: .mutation/$module.log)"
done
score report "${modules[@]}"
