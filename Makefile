# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

CHROMIUM ?= /usr/bin/chromium

.PHONY: install demo test test-fast clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[train,app,export,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) infer.py --content examples/content/chelsea.jpg --style examples/style/van_gogh_starry_night.jpg --output outputs/demo.jpg

test: $(STAMP) browser
	$(PY) -m pytest

# The quick loop while working: everything but the slow, browser and GPU tests (CI runs `make test`).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not browser and not gpu"

# Debian's chromium for the web app's end-to-end test (tests/test_app_browser.py). Installed with
# apt-get when run as root (developers' machines, CI); elsewhere the browser test skips, except
# under REQUIRE_BROWSER=1 (set by .ci/run), where it fails. `make demo` does not need it.
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (apt-get) for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: $(CHROMIUM) is missing and cannot be installed here (needs root and apt-get); the browser test will skip"; fi

clean:
	rm -rf $(VENV) outputs
