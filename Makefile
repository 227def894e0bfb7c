# The two commands a clean machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-embedded lint bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Set up and run the whole platform on embedded servers (Ctrl-C stops it).
demo: $(STAMP)
	$(BIN)/its demo $(DEMO_ARGS)

## Headless Chromium and Firefox ESR for the control-centre browser tests (Debian packages;
## Playwright drives them as they are: Chromium over CDP, Firefox over WebDriver BiDi).
browser:
	@command -v chromium >/dev/null && command -v firefox-esr >/dev/null || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium firefox-esr; }

## Set up and run the tests (uses ITS_DATABASE_URL / ITS_MQTT_URL when set).
test: $(STAMP) browser
	$(BIN)/pytest -m "not embedded" $(PYTEST_ARGS)

## The part of the suite that runs with both URLs unset (embedded PostgreSQL + Mosquitto).
test-embedded: $(STAMP)
	env -u ITS_DATABASE_URL -u ITS_MQTT_URL $(BIN)/pytest -m embedded $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy its maps telematics parking video traffic

bench: $(STAMP)
	$(BIN)/its bench all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
