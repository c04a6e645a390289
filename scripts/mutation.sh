#!/usr/bin/env bash
# Mutation testing of the security-critical modules with mutmut (pinned in
# requirements-mutation.txt; configured in pyproject.toml [tool.mutmut]).
#
#   scripts/mutation.sh                 # every module, one after the other
#   scripts/mutation.sh tokens audit    # only these modules (keys: scripts/mutation_score.py modules)
#   scripts/mutation.sh --report        # print the score table of the last runs, run nothing
#   scripts/mutation.sh --survivors [M] # each surviving mutant with its line and diff
#   scripts/mutation.sh --rerun [M ...] # run only the survivors again (after adding tests)
#
# mutmut copies src/, tests/ and docs/ into ./mutants (git-ignored), runs the sans-IO suites
# once to learn which tests call which function, then for every mutant only those tests, in
# forked workers (MUTATION_JOBS, default 2). Results are cached in ./mutants; delete it to
# start over. Not part of scripts/test.sh: a whole run takes about an hour here (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || scripts/bootstrap.sh
if ! .venv/bin/mutmut --version 2>/dev/null | grep -q "3.8.1"; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
    -r requirements-mutation.txt
fi

score() { .venv/bin/python scripts/mutation_score.py "$@"; }

case "${1:-}" in
  --report) shift; score report "$@"; exit 0 ;;
  --survivors) shift; score survivors "$@"; exit 0 ;;
esac

jobs=${MUTATION_JOBS:-2}
if [ "${1:-}" = --rerun ]; then
  shift
  mapfile -t names < <(score open "$@")
  if [ ${#names[@]} -gt 0 ]; then
    echo "== re-running ${#names[@]} surviving mutant(s)"
    .venv/bin/mutmut run --max-children "$jobs" "${names[@]}" > mutants/rerun.log 2>&1 || {
      tail -n 40 mutants/rerun.log
      exit 1
    }
  fi
  score report "$@"
  exit 0
fi
mkdir -p mutants
if [ $# -gt 0 ]; then modules=("$@"); else mapfile -t modules < <(score modules); fi

for module in "${modules[@]}"; do
  start=$(date +%s)
  if [ "$module" = bolster ] && [ ! -f mutants/src/iomt/core/biomt/bolster.py.meta ]; then
    # the names of bolster.py's check mutants are read from the generated mutants
    .venv/bin/mutmut run --max-children "$jobs" \
      "iomt.core.biomt.bolster.xǁBolsterǁ_device__mutmut_*" >/dev/null
  fi
  mapfile -t names < <(score names "$module")
  echo "== $module: ${#names[@]} mutant name(s) or pattern(s)"
  .venv/bin/mutmut run --max-children "$jobs" "${names[@]}" > "mutants/$module.log" 2>&1 || {
    tail -n 40 "mutants/$module.log"
    exit 1
  }
  echo "   $(($(date +%s) - start)) s (log: mutants/$module.log)"
done
score report "${modules[@]}"
