# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.spinexr-installed
DEMO_DIR ?= demo-out
# Offline by construction: nothing may reach a model hub at run time.
export HF_HUB_OFFLINE := 1
export NO_ALBUMENTATIONS_UPDATE := 1
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := 0

.PHONY: setup browser dicom-tools demo test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (spinexr needs Python 3.11)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[ml,serve,batch,pacs,dev]'
	@$(MAKE) --no-print-directory browser
	@$(MAKE) --no-print-directory dicom-tools
	@touch $@

# The browser UI test uses the system Chromium. Best effort: install Debian's package from the
# local apt cache when it is there and we may (root); otherwise that one test says it skipped.
CHROMIUM_DEBS := $(wildcard /var/cache/apt/archives/chromium_*.deb /var/cache/apt/archives/chromium-common_*.deb)
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && [ -n "$(CHROMIUM_DEBS)" ] && \
	  apt-get install -y -qq --no-download --no-install-recommends $(CHROMIUM_DEBS) >/dev/null 2>&1 \
	  && echo "installed chromium from the apt cache (for the UI test)"; } || \
	  echo "note: no chromium; the browser UI test will be skipped"

# The DICOM validity tests (tests/report/test_dicom_validity.py) run dicom3tools' dciodvfy and
# dcmtk's dsrdump and dcmpschk; the DICOM node tests (tests/pacs) use dcmtk's storescu, storescp
# and echoscu as a third-party modality and PACS. Best effort: Debian's packages are installed
# with apt-get when we are root (apt-get update first if the package lists are stale); otherwise
# those tests skip and this says why.
DICOM_TOOLS_MISSING = $(strip $(foreach t,dciodvfy dsrdump dcmpschk storescu storescp echoscu,\
                        $(if $(shell command -v $(t)),,$(t))))
DICOM_TOOLS_APT := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dicom3tools dcmtk
DICOM_TOOLS_SKIP := the DICOM validity and DCMTK interoperability tests will be skipped
dicom-tools:
	@if [ -z "$(DICOM_TOOLS_MISSING)" ]; then :; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: $(DICOM_TOOLS_MISSING) missing and apt-get not usable here (not root?):" \
	    "run 'sudo apt-get install -y dicom3tools dcmtk'; $(DICOM_TOOLS_SKIP)"; \
	elif { $(DICOM_TOOLS_APT) || { apt-get update -qq && $(DICOM_TOOLS_APT); }; } \
	     >/dev/null 2>&1; then \
	  echo "installed dicom3tools and dcmtk (for the DICOM validity tests)"; \
	else \
	  echo "note: apt-get could not install dicom3tools dcmtk; $(DICOM_TOOLS_SKIP)"; \
	fi

demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(VENV)/bin/spinexr phantom --n 3 --seed 7 --out $(DEMO_DIR)/study --layout vindr \
	  --transfer-syntax j2k --abnormal-rate 0.7 --quiet
	$(VENV)/bin/spinexr analyze $(DEMO_DIR)/study/train_images --out $(DEMO_DIR)/results \
	  --explain gradcam
	@echo ""
	@echo "demo: synthetic study in $(DEMO_DIR)/study, analysed with models/demo (trained on phantoms; not for clinical use)."
	@echo "demo: HTML reports:"
	@ls -1 $(DEMO_DIR)/results/*/report.html | sed 's/^/  /'

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m 'not slow'

bench: $(STAMP)
	$(PY) benchmarks/decode.py --quick

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis
