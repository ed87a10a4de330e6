# The README's commands. Each target installs what it needs first, so a fresh clone works.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
PEOPLE ?= 500
SEED ?= 7

.PHONY: install demo test lab clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "crmmigrate needs Python 3.11, got " + sys.version' 
	@# uv resolves ~2x faster than pip; pip is the fallback where uv cannot be had.
	@# Bytecode is compiled at install, as pip does: uv does not, and where PYTHONDONTWRITEBYTECODE
	@# is set (it is on our development machines) every `crmmigrate` process and notebook kernel
	@# compiled its imports again: 4.0 s to import the stages instead of 1.2.
	$(BIN)/python -m pip install -q --disable-pip-version-check uv 2>/dev/null && \
	  $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.txt -e . || \
	  $(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: install
	$(BIN)/crmmigrate demo-data --out data/demo --people $(PEOPLE) --seed $(SEED)
	$(BIN)/crmmigrate run --project .

test: install
	$(BIN)/python -m pytest

lab: install
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean:
	rm -rf runs data crm/*.sqlite
