# Two commands matter: `make demo` (the main job on the bundled sample corpus) and `make test`.
# Both create the virtual environment on first use.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEMO    ?= out/demo

.PHONY: venv demo test lint bench-cpu clean

venv: $(STAMP)

# ultralytics pulls the GUI build of OpenCV; we run headless, so swap it for the pinned headless wheel.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	SAM2_BUILD_CUDA=0 $(BIN)/pip install -q -e ".[dev]"  # sam2's optional CUDA op only fills mask holes
	$(BIN)/pip uninstall -q -y opencv-python || true
	$(BIN)/pip install -q --force-reinstall --no-deps "opencv-python-headless==5.0.0.93"
	touch $(STAMP)

# Builds the synthetic sample corpus (with a few deliberately broken inputs), curates it on a local Ray (classical
# filters, object masks, CLIP scores, edit pairs), draws a sheet of the pairs, then trains the `tiny` LIVEditor
# on those pairs for a few steps and prints its validation metrics.
demo: venv
	$(BIN)/python -m curation.corpus $(DEMO)/corpus --with-bad-inputs
	$(BIN)/python -m jobs.curate --config jobs/configs/demo.yaml --input $(DEMO)/corpus --output $(DEMO)/dataset --resume
	$(BIN)/python -m manifests sample $(DEMO)/dataset --pairs -n 10 --out $(DEMO)/pairs.png
	$(BIN)/python -m manifests report $(DEMO)/dataset --out $(DEMO)/report.png
	$(BIN)/python -m isa_model train --config tiny --data $(DEMO)/dataset --out $(DEMO)/model
	$(BIN)/python -m isa_model validate --ckpt $(DEMO)/model/checkpoints --data $(DEMO)/dataset --out $(DEMO)/model/val

test: venv
	$(BIN)/python -m pytest

# ruff and mypy as configured in pyproject.toml (CI runs this before the tests).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf out .pytest_cache
