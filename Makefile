# The two set-up commands of the README. Both work from a fresh clone.
#   make run   venv + install, start the local dev stack, run the demo job, stop the stack
#   make test  venv + install (system packages too), run the whole suite, stop what it started

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
FERRY  := $(VENV)/bin/ferry
STAMP  := $(VENV)/.installed
# The run's own stack, apart from any stack a developer keeps running under .ferry/dev.
RUN_HOME  := $(CURDIR)/.ferry/run
TEST_HOME := /tmp/ferry-make-test-stack

.PHONY: run test check install system-deps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Ferry needs Python 3.11+"'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	./scripts/install-system-deps.sh

run: system-deps install
	@$(FERRY) dev --home $(RUN_HOME) up; rc=$$?; \
	if [ $$rc -eq 0 ]; then FERRY_HOME=$(RUN_HOME) $(FERRY) demo; rc=$$?; fi; \
	$(FERRY) dev --home $(RUN_HOME) down; exit $$rc

# Formatting, lint and types: seconds, so they run before the suite and fail it early.
check: install
	$(VENV)/bin/ruff format --check app tests bench scripts tools
	$(VENV)/bin/ruff check app tests bench scripts tools
	$(VENV)/bin/mypy

test: system-deps install check
	@rm -rf $(TEST_HOME); \
	FERRY_TEST_STACK_HOME=$(TEST_HOME) $(PY) -m pytest; rc=$$?; \
	$(FERRY) dev --home $(TEST_HOME) down >/dev/null 2>&1; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

clean:
	-$(FERRY) dev --home $(RUN_HOME) down
	rm -rf $(VENV) .ferry .pytest_cache
