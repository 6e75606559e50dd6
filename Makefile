# gfr — reproducible face gender recognition study.  `make help` lists the targets.
SHELL := /bin/bash
PY ?= .venv/bin/python
KERNEL := gfr
export KERAS_BACKEND ?= tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2
export GFR_WEIGHTS_DIR ?= $(HOME)/.cache/gfr/weights
# GFR_DATA_DIR: the CelebA-layout data folder (required for the study), e.g. ../shared/celeba-5k
export GFR_DATA_DIR

BACKBONES := VGG16 InceptionV3 InceptionResNetV2 ResNet50
ITERATIONS := 1 2 3
RUN_NAMES := $(foreach b,$(BACKBONES),$(foreach i,$(ITERATIONS),$(b)-it$(i)))
RUNS := $(RUN_NAMES:%=reports/runs/%.ipynb)
GFR_SRC := $(wildcard gfr/*.py gfr/*/*.py)
# modules whose change can change a run's numbers (plots, report and CLI changes do not rerun the sweep)
RUN_SRC := $(addprefix gfr/,run.py features.py backbones.py head.py images.py metrics.py timing.py params.py split.py celeba.py)
SPLIT := reports/split.csv
RUN_NOTEBOOK = $(PY) -m gfr notebook

.DEFAULT_GOAL := help
.PHONY: help setup setup-pdf lab test test-gfr test-notebooks split sweep runs finetune results peer report clean-runs \
        bench bench-sweep bench-backends bench-inference bench-scale

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "  variables: GFR_DATA_DIR (data, required), GFR_WEIGHTS_DIR ($(GFR_WEIGHTS_DIR)), KERAS_BACKEND ($(KERAS_BACKEND))"

setup: ## create .venv, install gfr with notebook and test tools, register the Jupyter kernel
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[tensorflow,notebooks,test]'
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (gfr)"

setup-pdf: ## install the headless browser that prints the PDF report (Debian: chromium)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core)

lab: ## start JupyterLab on the project with the gfr kernel
	.venv/bin/jupyter lab --notebook-dir=. notebooks/

test: test-gfr test-notebooks ## run the whole test suite (pytest on gfr + nbval on every notebook)

test-gfr: ## pytest on the gfr package
	$(PY) -m pytest tests -q

build/nbval/.prepared: notebooks/*.py params/*.yaml $(GFR_SRC) tests/nbval_params.py
	$(PY) tests/nbval_params.py build/nbval && touch $@

test-notebooks: build/nbval/.prepared ## nbval: execute every notebook with the tiny synthetic parameter set
	$(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env build/nbval/*.ipynb

# ---- the study ---------------------------------------------------------------------------------------
# Weights availability per backbone; a stamp is rewritten only when it changes, so a run reruns once its
# weights appear (or change) and not otherwise.
ifneq ($(filter report sweep runs results reports/%,$(MAKECMDGOALS)),)
_weights := $(shell GFR_WEIGHTS_DIR="$(GFR_WEIGHTS_DIR)" KERAS_BACKEND=$(KERAS_BACKEND) \
  $(PY) -m gfr weights $(BACKBONES) --stamp-dir build/weights 2>/dev/null)
endif

# The manifest is rewritten only when its content changes, so runs rerun only for a real change of split.
build/split.stamp: params/base.yaml gfr/data/split.py gfr/data/celeba.py gfr/data/images.py
	$(PY) -m gfr split --out $(SPLIT) && mkdir -p build && touch $@
$(SPLIT): build/split.stamp ;

reports/01_data.ipynb: notebooks/01_data.py $(SPLIT) gfr/report/plots.py gfr/study/analysis.py
	$(RUN_NOTEBOOK) notebooks/01_data.py $@

split: $(SPLIT) ## write the split manifest (and the data notebook)

define RUN_RULE
reports/runs/$(1)-it$(2).ipynb: notebooks/02_train.py params/base.yaml params/it$(2).yaml $(RUN_SRC) $(SPLIT) build/weights/$(1).json
	$(RUN_NOTEBOOK) notebooks/02_train.py $$@ -p backbone $(1) -p iteration $(2)
endef
$(foreach b,$(BACKBONES),$(foreach i,$(ITERATIONS),$(eval $(call RUN_RULE,$(b),$(i)))))

# Iteration 4 fine-tunes the top block(s) of the backbone that did best on validation in iterations 1-3
# (ResNet50 here). About 15-25 minutes on 2 CPU cores; `make report FINETUNE=0` leaves it out.
FINETUNE ?= 1
FINETUNE_BACKBONE ?= ResNet50
FINETUNE_RUN := reports/runs/$(FINETUNE_BACKBONE)-it4.ipynb
$(eval $(call RUN_RULE,$(FINETUNE_BACKBONE),4))
$(FINETUNE_RUN): gfr/models/finetune.py
ALL_RUNS := $(RUNS) $(if $(filter 1,$(FINETUNE)),$(FINETUNE_RUN))

finetune: $(FINETUNE_RUN) ## iteration 4: fine-tune the top block(s) of FINETUNE_BACKBONE (slow on a CPU)

runs: $(ALL_RUNS)

sweep: ## run every backbone x iteration notebook that is out of date; summary; non-zero exit if any failed
	@$(MAKE) --no-print-directory -k runs; rc=$$?; $(PY) -m gfr results --strict && exit $$rc

reports/results.csv: $(ALL_RUNS)
	$(PY) -m gfr results

results: reports/results.csv ## collect reports/results.csv from the runs

peer: $(SPLIT) ## run the peer baseline (needs `pip install -e .[peers]`) on the test split
	$(PY) -m gfr peer --manifest $(SPLIT) --out reports/peer

reports/03_evaluate.ipynb: notebooks/03_evaluate.py $(ALL_RUNS) $(GFR_SRC) $(wildcard reports/peer/*)
	$(RUN_NOTEBOOK) notebooks/03_evaluate.py $@

reports/04_compare.ipynb: notebooks/04_compare.py $(ALL_RUNS) $(GFR_SRC) $(wildcard reports/peer/*)
	$(RUN_NOTEBOOK) notebooks/04_compare.py $@

report: sweep reports/results.csv reports/01_data.ipynb reports/03_evaluate.ipynb reports/04_compare.ipynb ## the whole chain: split, sweep, report.html + report.pdf
	$(PY) -m gfr report --notebooks reports --out-dir reports

# ---- benchmarks (ratios measured side by side; see benchmarks/README.md) ---------------------------------
bench: bench-sweep bench-backends bench-inference bench-scale ## all benchmarks (< 30 min on 2 cores), table in benchmarks/README.md
	$(PY) benchmarks/report.py

bench-sweep: ## cached-feature sweep vs the original way (fit on images every epoch): wall-time ratio
	$(PY) benchmarks/bench_sweep.py --repeats 1 $(if $(wildcard reports/runs/*/manifest.json),--manifests 'reports/runs/*/manifest.json')

bench-backends: ## feature-extraction img/s under tensorflow, jax and torch (needs `pip install -e .[bench]`)
	$(PY) benchmarks/bench_backends.py

bench-inference: ## end-to-end test-split prediction from JPEGs vs the forward-pass floor; predict latency
	$(PY) benchmarks/bench_inference.py

bench-scale: ## 5,000 vs 50,000 synthetic images: throughput and peak memory of feature extraction
	$(PY) benchmarks/bench_scale.py --prepare
	$(PY) benchmarks/bench_scale.py

clean-runs: ## delete executed run notebooks (the feature cache stays)
	rm -rf reports/runs/*.ipynb
