# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# `make demo` needs only the venv; `make test` also installs Chromium for the browser tests.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NNUNET_STAMP := $(VENV)/.installed-nnunet

.PHONY: demo test lint clean chromium

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of PyTorch, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian's Chromium for the review page's browser tests (Playwright drives it; never `playwright install`).
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# nnU-Net v2 for tests/test_nnunet.py (the relation trainer); `make demo` does not need it.
$(NNUNET_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[nnunet]'
	touch $(NNUNET_STAMP)

demo: $(STAMP)
	$(VENV)/bin/relunet demo --out runs/demo

test: $(STAMP) chromium $(NNUNET_STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs
