# The two commands a clean machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_WORKERS ?= 2

.PHONY: setup demo test test-all test-embedded test-noshared lint bench clean browser

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
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium firefox-esr; } || \
	  echo "make browser: the control-centre browser tests need Debian's chromium and firefox-esr" \
	       "(as root: apt-get install chromium firefox-esr; or set ITS_CHROMIUM / ITS_FIREFOX to their binaries);" \
	       "without them those tests are skipped and say why."

## Set up and run the tests (uses ITS_DATABASE_URL / ITS_MQTT_URL when set): everything but the
## long evaluations marked `slow`, on two workers (tests/conftest.py keeps each module on one
## worker and the process-killing fault and deploy tests one after another; one OpenMP thread
## per process, as LightGBM's spinning threads on two busy workers would take the cores from each other).
test: $(STAMP) browser
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/pytest -m "not embedded and not slow" -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

## The whole suite, long evaluations included (about an hour on two cores).
test-all: $(STAMP) browser
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/pytest -m "not embedded" -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

## The part of the suite that runs with both URLs unset (embedded PostgreSQL + Mosquitto).
test-embedded: $(STAMP)
	env -u ITS_DATABASE_URL -u ITS_MQTT_URL ITS_TEST_NO_SERVERS=1 $(BIN)/pytest -m embedded $(PYTEST_ARGS)

## The tests that use real data (marker `shared`) as on a clean machine: ITS_SHARED_DATA at a
## missing folder, so they run on what the project installs or makes (tests/standins.py,
## its/app/samples.py, video/synthetic.py); fails when a test skips that is not `eval` (an
## accuracy evaluation on a shared dataset) or `spec` (a check against an official schema of
## ../shared/specs) (tests/conftest.py). Tests marked `needs_shared` (none today) are left out
## here (list them: `pytest -m needs_shared --collect-only -q`).
test-noshared: $(STAMP) browser
	ITS_SHARED_DATA=$(CURDIR)/.no-shared-data ITS_NO_SHARED_CHECK=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} \
	  $(BIN)/pytest -m "shared and not needs_shared and not embedded and not slow" -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy its maps telematics parking video traffic

bench: $(STAMP)
	$(BIN)/its bench all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
