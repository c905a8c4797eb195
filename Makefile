# The two commands of the README: `make book` and `make test`.
# Both create the virtual environment .venv (Python 3.11) when it is missing.
PYTHON ?= python3.11
# pytest-xdist workers for `make test` and `make test-fast` (auto: one per CPU core).
JOBS   ?= auto
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: book test test-fast lint clean browser

# Notebooks run in their own folder: give them an absolute data path.
ifdef SRLIB_DATA
export SRLIB_DATA := $(abspath $(SRLIB_DATA))
endif

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $@

## Execute the notebooks and build the static HTML book in _build/html.
book: $(VENV)/.installed
	$(BIN)/jupyter-book build -W --keep-going .

## Debian's Chromium and chromedriver for tests/test_browser.py, installed when missing
## (never a browser downloaded by a test tool). Needs root, or sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver; }

## Run every test: lint, unit tests, the book build (which runs every notebook once; their checked
## outputs are compared with the saved ones) and the browser test.
## Screenshots of the chapters are left in _build/screenshots/.
## The tests run in $(JOBS) parallel workers (tests/conftest.py gives each its share of the cores).
test: $(VENV)/.installed browser
	$(BIN)/ruff check srlib tests benchmarks scripts book/_ext notebooks
	$(BIN)/python -m pytest tests -n $(JOBS) --durations=25

## The fast tier: lint and the unit tests, without the book build, the browser and the slow tests
## (marked `slow`: over about 10 s each, e.g. training runs, signals, DDP, ONNX export); about 2 minutes on two cores.
test-fast: $(VENV)/.installed
	$(BIN)/ruff check srlib tests benchmarks scripts book/_ext notebooks
	$(BIN)/python -m pytest tests -n $(JOBS) -m "not book and not slow" --durations=10

clean:
	rm -rf _build
