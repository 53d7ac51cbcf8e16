# Two entry points for a fresh machine: `make demo` and `make test`.
# Both install into .venv at the project root, so .venv/bin/saropt works after either.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
# CPU builds that work on this project's machines; the package itself only declares ranges.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-real install install-core bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core-installed: pyproject.toml | $(PY)
	$(PIP) -e '.[fast]'
	touch $@

$(VENV)/.full-installed: pyproject.toml | $(PY)
	$(PIP) $(TORCH_PINS)
	$(PIP) -e '.[all,test]' $(TORCH_PINS)
	touch $(VENV)/.core-installed $@

install-core: $(VENV)/.core-installed
install: $(VENV)/.full-installed

demo: install-core
	$(VENV)/bin/saropt demo --out demo-out

test: install
	$(PY) -m pytest -q -m "not realdata" tests

test-real: install
	$(PY) -m pytest -q -m realdata tests

clean:
	rm -rf $(VENV) demo-out .pytest_cache
