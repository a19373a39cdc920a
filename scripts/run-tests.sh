#!/usr/bin/env bash
# `make test`'s pytest runs, side by side, each with its own stack (tests/conftest.py):
#   - the main suite, as two pytest processes (pytest-xdist, `-n 2 --dist worksteal`: the
#     tests split in two, and a process that runs out takes half of what the other has left;
#     `--dist load` hands out big batches up front, and one process sat idle for 27 minutes);
#   - the secured run (its tests are the arguments: SECURE_TESTS in the Makefile) against a
#     secured stack, started with the main suite: it uses the CPU that the three tests waiting
#     out an alert rule's `for: 5m` leave idle. Its output goes to a log, shown after the
#     main suite's.
# TEST_PORT_CLASS keeps their ports apart (streams/stack/ports.py). Fails if either fails.
set -uo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
log=.salespulse/secure-tests.log
mkdir -p .salespulse

echo "The secured run ($# tests or files) runs beside the main suite; its output: $log"
TEST_PORT_CLASS=2/3 SALESPULSE_TEST_SECURE=1 \
  "$python" -m pytest -p no:cacheprovider "$@" >"$log" 2>&1 &
secure=$!
trap 'kill -INT "$secure" 2>/dev/null; wait "$secure"' INT TERM

TEST_PORT_CLASS=0/3 "$python" -m pytest -n 2 --dist worksteal
main=$?

wait "$secure"
secured=$?
trap - INT TERM
echo "======================== the secured run ($log) ========================"
cat "$log"
echo "main suite: exit $main; secured run: exit $secured"
[ "$main" -eq 0 ] && [ "$secured" -eq 0 ]
