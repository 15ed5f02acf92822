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

.PHONY: setup browser dicom-tools demo demo-aims test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (spinexr needs Python 3.11)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[ml,serve,batch,pacs,dev]'
	@$(MAKE) --no-print-directory browser
	@$(MAKE) --no-print-directory dicom-tools
	@touch $@

# The browser UI tests (tests/service/test_ui_*.py) drive Debian's chromium with Playwright (its
# own browser download is never used). Installed the ordinary way when we are root: apt-get
# install chromium (apt-get update first when the package lists are stale), then the local apt
# cache as a fallback; otherwise this says why, and those tests skip saying so.
CHROMIUM_DEBS := $(wildcard /var/cache/apt/archives/chromium_*.deb /var/cache/apt/archives/chromium-common_*.deb)
CHROMIUM_APT := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
CHROMIUM_SKIP := the browser UI tests (tests/service/test_ui_*.py) will be skipped
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: chromium missing and apt-get not usable here (not root?): run" \
	    "'sudo apt-get install -y chromium'; $(CHROMIUM_SKIP)"; \
	elif { $(CHROMIUM_APT) || { apt-get update -qq && $(CHROMIUM_APT); }; } >/dev/null 2>&1; then \
	  echo "installed chromium with apt-get (for the browser UI tests)"; \
	elif [ -n "$(CHROMIUM_DEBS)" ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	     --no-download $(CHROMIUM_DEBS) >/dev/null 2>&1; then \
	  echo "installed chromium from the local apt cache (for the browser UI tests)"; \
	else \
	  echo "WARNING: chromium could not be installed (apt-get install chromium failed and the" \
	    "apt cache has no usable package); $(CHROMIUM_SKIP)"; \
	fi

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

# The demo pack's figures as a user gets them (issue 16): fixed fresh-seed sets of full-size
# JPEG 2000 phantoms through the whole analyzer, recorded in models/demo/pack.json (run after a
# retrain; tests/models/test_demo_aims.py re-measures them with the same sets). A set is
# written once per argument list (generation is deterministic).
AIMS_DIR ?= runs/aims
AIMS_xray := --layout coco --transfer-syntax j2k --n 100 --seed 9100 --split test
AIMS_cervical := --layout coco --transfer-syntax j2k --region cervical --abnormal-rate 0.9 \
  --cervical-injury-rate 0.6 --n 40 --seed 9200 --split test
AIMS_mri := --task mri --layout vindr --transfer-syntax j2k --n 40 --seed 9300 --split test
AIMS_EVAL = spinexr evaluate $(AIMS_DIR)/$(1) --pack models/demo --vertebrae models/vertebrae \
  --split test --out models/demo/aims/$(1) --n-boot 0
demo-aims: $(STAMP)
	@set -e; for s in xray cervical mri; do \
	  case $$s in xray) args="$(AIMS_xray)";; cervical) args="$(AIMS_cervical)";; \
	    mri) args="$(AIMS_mri)";; esac; \
	  if [ "$$(cat $(AIMS_DIR)/$$s.args 2>/dev/null)" != "$$args" ]; then \
	    rm -rf $(AIMS_DIR)/$$s; \
	    $(VENV)/bin/spinexr phantom $$args --out $(AIMS_DIR)/$$s --quiet; \
	    echo "$$args" > $(AIMS_DIR)/$$s.args; \
	  fi; \
	  rm -rf models/demo/aims/$$s; \
	  $(VENV)/bin/$(call AIMS_EVAL,$$s); \
	  $(VENV)/bin/spinexr pack record models/demo models/demo/aims/$$s/metrics.json \
	    --as aims/$$s --command "spinexr phantom $$args --out $(AIMS_DIR)/$$s && \
	    $(call AIMS_EVAL,$$s)"; \
	done

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m 'not slow'

bench: $(STAMP)
	$(PY) benchmarks/decode.py --quick

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis
