# Hydra overrides pass through ARGS, e.g.
#   make build-dataset ARGS="data_root=/tmp/x source.limit=20"
PY := .venv/bin/python
ARGS ?=
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup lock build-dataset status errors test test-nightly bench lint train infer

setup:  ## create .venv with everything the default profile needs (idempotent)
	./scripts/setup.sh

lock:  ## regenerate requirements.lock from pyproject.toml + constraints.txt (then: make setup)
	./scripts/lock.sh $(ARGS)

build-dataset:  ## run the pipeline (default: local profile, the bundled sample, offline)
	$(PY) -m pipeline build $(ARGS)

status:  ## per stage: shards done/total, items, errors, elapsed
	$(PY) -m pipeline status $(ARGS)

errors:  ## every dropped item with its stage and reason
	$(PY) -m pipeline errors $(ARGS)

test:  ## the test suite (offline, real small engines)
	$(PY) -m pytest -q $(ARGS)

test-nightly:  ## the long kill-and-resume tests over every model stage
	$(PY) -m pytest -q -m nightly $(ARGS)

bench:  ## benchmarks: ratios measured side by side
	$(PY) -m benchmarks $(ARGS)

lint:
	$(PY) -m ruff check pipeline stages omni tests benchmarks

train:  ## train LLaMA-Omni on the shards of a build (data_root=...)
	$(PY) -m omni.train $(ARGS)

infer:  ## speech in, text and units out: make infer ARGS="data_root=data audio=FILE.wav"
	$(PY) -m omni.infer $(ARGS)
