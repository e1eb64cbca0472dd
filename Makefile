# `make demo` and `make test` work on a fresh machine with Python 3.11, git and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean chromium po mo

# The venv is rebuilt when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,spark,bench,postgres]"
	@touch $(STAMP)

# The pages' compiled catalogues, rebuilt when a .po changes (setup.py compiles them in a build).
PO := $(wildcard src/archer/locale/*/LC_MESSAGES/archer.po)
MO := $(PO:.po=.mo)
%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile -D archer -i $< -o $@

# The pages' words: extract the marked texts (babel.cfg) and merge them into the Chinese
# catalogue (translate the new ones in the .po), then compile. The app compiles a stale .mo in
# memory, so a forgotten `make mo` only costs a moment at start.
po: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k t -k N_ --no-location --sort-output \
	  --project archer -o src/archer/locale/archer.pot .
	$(BIN)/pybabel update --no-fuzzy-matching --width 100 -D archer -i src/archer/locale/archer.pot \
	  -d src/archer/locale
	$(MAKE) mo

mo: $(MO)

demo: $(STAMP) $(MO)
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

test: $(STAMP) $(MO) chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) demo-shop .pytest_cache
