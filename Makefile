# salespulse: `make demo` to see it run, `make test` to check it. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install system-deps demo test lint clean

install: system-deps $(VENV)/.installed
	@$(BIN)/salespulse stack fetch

system-deps:
	@bash scripts/install-system-deps.sh

# Re-installed when pyproject.toml changes; pip >= 25.1 reads the `dev` dependency group.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U "pip>=25.1"
	$(BIN)/python -m pip install -q -e . --group dev
	@touch $@

demo: install
	$(BIN)/salespulse demo

# Run again against a secured stack (`salespulse stack up --secure`: Kafka over SASL_SSL with
# SCRAM): the end-to-end slice, replay, the API and one exactly-once test.
SECURE_TESTS := tests/integration/test_revenue_slice.py tests/integration/test_replay.py \
	tests/integration/kpi/test_api.py::test_the_api_and_the_kpi_command_answer_as_the_reference \
	tests/integration/kpi/test_exactly_once.py::test_kill_9_at_random_points_changes_nothing

# The main suite as two pytest processes, and the secured run beside it, each with its own
# stack: scripts/run-tests.sh says how they share the machine.
test: install
	$(BIN)/ruff check streams tests
	$(BIN)/mypy
	bash scripts/run-tests.sh $(SECURE_TESTS)

lint: install
	$(BIN)/ruff check streams tests
	$(BIN)/ruff format --check streams tests
	$(BIN)/mypy

clean:
	-$(BIN)/salespulse stack down
	rm -rf $(VENV) .salespulse .pytest_cache .mypy_cache .ruff_cache

# Throughput and peak RSS at 20k and 200k events (bare aiokafka vs the full pipeline), produce ->
# Redis latency at 1,000/s, CRM replay, one /metrics scrape, on an isolated local stack; progress
# is read from the broker, never from the worker. See bench/README.md; bench/results/latest.json.
.PHONY: bench
bench: install
	$(BIN)/python -m bench.run
