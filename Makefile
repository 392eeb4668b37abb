# Hydra overrides pass through ARGS, e.g.
#   make build-dataset ARGS="data_root=/tmp/x source.limit=20"
PY := .venv/bin/python
CLI := .venv/bin/instructs2s
ARGS ?=
FORMAT ?= llama_omni
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

# profile=full_rehearsal / train=full_rehearsal read stand-ins under the run's model_cache: made first.
REHEARSAL := $(findstring full_rehearsal,$(ARGS))
STANDINS_ARGS := $(patsubst model_cache=%,--model-cache %,$(filter model_cache=%,$(ARGS)))

.PHONY: setup setup-cosyvoice standins lock build-dataset plan status errors export-dataset test test-nightly bench lint train infer eval

setup:  ## create .venv with everything the default profile needs (idempotent)
	./scripts/setup.sh

setup-cosyvoice:  ## create .venv-cosyvoice, CosyVoice's own environment (profile=full_rehearsal, its tests; idempotent)
	./scripts/setup_cosyvoice.sh

standins:  ## the full profile's models as tiny random stand-ins in their real formats (for the rehearsal profiles)
	$(MAKE) --no-print-directory setup-cosyvoice
	$(PY) scripts/make_standins.py $(STANDINS_ARGS)

lock:  ## regenerate requirements.lock from pyproject.toml + constraints.txt (then: make setup)
	./scripts/lock.sh $(ARGS)

build-dataset:  ## run the pipeline (default: local profile, the bundled sample, offline)
	$(if $(REHEARSAL),$(MAKE) --no-print-directory standins ARGS="$(ARGS)")
	$(CLI) build $(ARGS)

plan:  ## what a build would run (done / stale / to run per stage) and how long it would take
	$(CLI) plan $(ARGS)

status:  ## per stage: shards done/total (stale ones marked), items, errors, elapsed
	$(CLI) status $(ARGS)

errors:  ## every dropped item with its stage and reason
	$(CLI) errors $(ARGS)

export-dataset:  ## another layout of a finished build: make export-dataset FORMAT=lhotse ARGS="data_root=data"
	$(CLI) export $(FORMAT) $(ARGS)

test:  ## the test suite (offline, real small engines)
	$(PY) -m pytest -q --durations=25 $(ARGS)

test-nightly:  ## the long tests: kill-and-resume over every model stage, the local build on Ray, the dialogue stage on vLLM
	$(PY) -m pytest -q -m nightly $(ARGS)

bench:  ## benchmarks: ratios measured side by side
	$(PY) -m benchmarks $(ARGS)

lint:
	$(PY) -m ruff check pipeline stages omni tests benchmarks

train:  ## train LLaMA-Omni on the shards of a build (data_root=...)
	$(if $(REHEARSAL),$(MAKE) --no-print-directory standins ARGS="$(ARGS)")
	$(CLI) train $(ARGS)

infer:  ## speech in, text, units and speech out: make infer ARGS="data_root=data audio=FILE.wav output=answer.wav"
	$(CLI) infer $(ARGS)

eval:  ## score a run's checkpoints on a build's held-out split (judge, WER, DNSMOS, latency): make eval ARGS="data_root=data"
	$(CLI) eval $(ARGS)
