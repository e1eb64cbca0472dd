# `make demo` and `make test` work on a fresh machine with Python 3.11, git and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean chromium

# The venv is rebuilt when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,spark,bench,postgres]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/archer demo --home demo-shop --customers 20000 --serve

# The browser tests drive Debian's Chromium (Playwright's own download does not work here);
# CJK fonts so that Chinese text renders in the screenshots. Installed when missing and apt-get
# can (as root, or with passwordless sudo); otherwise the browser tests say what is missing.
chromium:
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || \
	  { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	    $$SUDO apt-get install -y -q chromium fonts-noto-cjk >/dev/null || \
	    { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium fonts-noto-cjk >/dev/null; } || \
	    echo "could not install chromium: the browser tests will be skipped"; }

test: $(STAMP) chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) demo-shop .pytest_cache
