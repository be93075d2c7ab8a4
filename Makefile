# The two commands of the README. Each does all the set-up it needs on a fresh machine.
#   make serve   build the site from papers/*.yaml and serve it on http://127.0.0.1:8000
#   make test    run the whole test suite (unit tests, claims of each paper, notebooks, site, browser)
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve build test setup system-deps bench clean

$(STAMP): requirements-dev.txt pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Debian packages for the browser test (Chromium) and the BibTeX compile test (TeX).
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v bibtex >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium texlive-latex-base >/dev/null; \
	fi

serve: $(STAMP)
	$(BIN)/mkdocs serve -a 127.0.0.1:8000

build: $(STAMP)
	$(BIN)/mkdocs build --strict

test: $(STAMP) system-deps
	$(BIN)/kdatlas validate
	KDATLAS_QUICK=1 $(BIN)/pytest -n 2 --dist loadfile tests notebooks --nbval-lax -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/kdatlas bench

clean:
	rm -rf site .cache/mkdocs-jupyter
