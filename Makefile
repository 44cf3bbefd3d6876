# recd — the one entry point. `make help` lists the targets.
#
# Out-of-tree objects under $(B)/, programs under $(BIN)/. Dependencies are
# tracked with -MMD -MP. `make V=1` shows full commands.

B       ?= build
BIN     ?= bin
PREFIX  ?= /usr/local
# /usr installs keep their configuration in /etc, others under PREFIX
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
DESTDIR ?=
CONF    ?= conf/recd.json
PYTHON  ?= /usr/bin/python3
FUZZ_SECONDS ?= 60

CC      ?= cc
CXX     ?= c++
PKGS    := libevent libevent_pthreads libevent_openssl jansson openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

GIT_REV := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

OPT     ?= -O2
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter -Wno-format-truncation
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) -g -pthread -fno-strict-aliasing $(WARN) \
           -Iinclude $(PKG_CFLAGS) -MMD -MP $(SANFLAGS) $(CFLAGS)
# FAISS: the C API library when the system has one, else the project's own
# C API subset (src/ann/faiss_c.cpp) over Debian's static libfaiss.a, which
# needs LAPACK, OpenBLAS, OpenMP and the C++ runtime.
HAVE_FAISS_C := $(shell test -e /usr/lib/x86_64-linux-gnu/libfaiss_c.so -o -e /usr/lib/libfaiss_c.so -o -e /usr/local/lib/libfaiss_c.so && echo 1)
ifeq ($(HAVE_FAISS_C),1)
FAISS_LIBS := -lfaiss_c -lfaiss
else
FAISS_LIBS := -Wl,-Bstatic -lfaiss -Wl,-Bdynamic
endif
BLAS_LIBS  := -lopenblas
LDLIBS_ALL := $(FAISS_LIBS) -llapack $(BLAS_LIBS) $(PKG_LIBS) -lgomp -lstdc++ -lm -pthread \
              $(SANFLAGS) $(LDLIBS)
CXXFLAGS_ALL := -std=c++17 -D_GNU_SOURCE $(OPT) -g -pthread -fopenmp -Wall -Wextra -Werror \
           -Wno-unused-parameter -Iinclude -MMD -MP $(SANFLAGS) $(CXXFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRCS := $(sort $(wildcard src/*/*.c))
# src/ann/faissx.cpp (FAISS C++ helpers beyond the C API) is always built;
# src/ann/faiss_c.cpp (our C API subset) only when there is no libfaiss_c.
ifeq ($(HAVE_FAISS_C),1)
LIB_CXX_SRCS := $(filter-out src/ann/faiss_c.cpp,$(sort $(wildcard src/*/*.cpp)))
else
LIB_CXX_SRCS := $(sort $(wildcard src/*/*.cpp))
endif
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o) $(LIB_CXX_SRCS:%.cpp=$(B)/obj/%.o)
LIB      := $(B)/librecd.a

PROGS      := recd recd-train recdctl
PROG_BINS  := $(PROGS:%=$(BIN)/%)

UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

.PHONY: all deps deps-test deps-bench run test test-unit test-integration test-systemd test-fuzz-replay \
        asan fuzz fuzz-smoke bench bench-ann bench-events bench-swap bench-rank bench-recommend bench-train format install uninstall clean help check-config \
        soak sweep

all: $(PROG_BINS) $(BIN)/recd-load

help:
	@echo "make            build bin/recd"
	@echo "                and bin/recd-load, the open-loop load generator (recd-load --help)"
	@echo "make run        install missing packages, build, run recd with $(CONF)"
	@echo "make test       install missing packages, run unit, integration, systemd tests"
	@echo "make asan       the same tests on an ASan+UBSan build (build/asan)"
	@echo "make fuzz       run every libFuzzer target for FUZZ_SECONDS (default 60)"
	@echo "make models     train models/default/1 on the built-in synthetic world if missing"
	@echo "make bench      wrk against recd /healthz and nginx, side by side; then bench-ann,"
	@echo "                bench-rank, bench-recommend, bench-events, bench-swap, bench-train and"
	@echo "                a short sweep (10 s per point)"
	@echo "make bench-ann  ANN index types: build, memory, latency, recall (BENCH_ANN_ARGS)"
	@echo "make bench-rank candidates/s and GFLOP/s of DeepFM and Wide&Deep vs sgemm"
	@echo "make bench-recommend  wrk on POST /v1/recommend, 100k catalog, 300 candidates"
	@echo "make bench-train  training examples/s vs PyTorch (one thread), make models wall time"
	@echo "make bench-events  POST /v1/events per fsync policy and batch size; recommend p99 under ingest"
	@echo "make bench-swap  recommend p99 during model swaps and training; swap RSS; publish-to-serving"
	@echo "make sweep      capacity sweep: wrk closed-loop peak, then open-loop recd-load points"
	@echo "                (SCENARIO, SWEEP_SECONDS, SWEEP_POINTS, SWEEP_ARGS); docs/PERFORMANCE.md"
	@echo "make soak       SIGKILL crash rounds against event ingest (ROUNDS, default 200 per policy)"
	@echo "make format     clang-format the C sources"
	@echo "make install    install binary, config, unit (PREFIX=$(PREFIX) DESTDIR=)"
	@echo "make clean      remove build/ and bin/"

# ---- packages ---------------------------------------------------------------
deps:
	$(Q)scripts/deps.sh build
deps-test:
	$(Q)scripts/deps.sh test
deps-bench:
	$(Q)scripts/deps.sh bench

# ---- build ------------------------------------------------------------------
$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(CXXFLAGS_ALL) -c $< -o $@

# Build metadata: $(B)/gen/buildinfo.h is rewritten only when the commit
# changes, so an unchanged tree does not rebuild.
$(B)/gen/buildinfo.h: FORCE
	@mkdir -p $(dir $@)
	@printf '#define RECD_BUILD_GIT "%s"\n' "$(GIT_REV)" > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
.PHONY: FORCE
FORCE:

# keep intermediate objects of the chained pattern rules
.SECONDARY:
$(B)/obj/src/core/buildinfo.o: $(B)/gen/buildinfo.h
$(B)/obj/src/core/buildinfo.o: CFLAGS_ALL += -I$(B)/gen

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# recd-train's commands live in daemon/train/ (one file per command group)
TRAIN_CLI_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(sort $(wildcard daemon/train/*.c)))
$(BIN)/recd-train: $(B)/obj/daemon/recd-train.o $(TRAIN_CLI_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BIN)/%: $(B)/obj/daemon/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL) -lcmocka

# recd-load, the open-loop load generator: loadtest/recd-load.c and its
# modules loadtest/load/*.c (also linked into the unit test test_loadgen).
# Built by `all`, not installed.
LOAD_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(sort $(wildcard loadtest/load/*.c)))
$(BIN)/recd-load: $(B)/obj/loadtest/recd-load.o $(LOAD_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL)

$(B)/tests/test_loadgen: $(B)/obj/tests/unit/test_loadgen.o $(LOAD_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL) -lcmocka

# ---- fuzz seeds and regressions, replayed without libFuzzer -----------------
FUZZ_TARGETS     := $(sort $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c))))
FUZZ_REPLAY_BINS := $(FUZZ_TARGETS:%=$(B)/fuzz-replay/%)

$(B)/fuzz-replay/%: $(B)/obj/tests/fuzz/%.o $(B)/obj/tests/fuzz/replay_main.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL)

# ---- the default model: trained on the built-in synthetic world -------------
# `recd-train synth` generates a deterministic world (users with tastes,
# Zipf popularity, impressions, clicks, watch times); `recd-train fit`
# trains the candidate model, DeepFM and the content model on all of it
# (--no-holdout: a production model) and publishes models/default/1.
MODEL_USERS  ?= 5000
MODEL_ITEMS  ?= 20000
MODEL_EVENTS ?= 600000
MODEL_FIT_ARGS ?= --epochs 8 --rank-epochs 3
MODEL_INDEX ?=
.PHONY: models
models: models/default/1/manifest.json
# order-only: a rebuilt recd-train must not try to rewrite an immutable bundle
models/default/1/manifest.json: | $(BIN)/recd-train
	$(Q)$(BIN)/recd-train synth --out $(B)/data/synth-default --force --users $(MODEL_USERS) \
	    --items $(MODEL_ITEMS) --events $(MODEL_EVENTS) --seed 1
	$(Q)$(BIN)/recd-train fit --data $(B)/data/synth-default --out models --name default \
	    --version 1 --no-holdout --seed 1 $(MODEL_FIT_ARGS) $(if $(MODEL_INDEX),--index $(MODEL_INDEX))

# ---- run --------------------------------------------------------------------
run: deps
	$(Q)$(MAKE) --no-print-directory all models
	./$(BIN)/recd -c $(CONF)

check-config: all
	./$(BIN)/recd -c $(CONF) --check-config

# ---- tests ------------------------------------------------------------------
test: deps-test
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS) $(FUZZ_REPLAY_BINS)
	$(Q)$(MAKE) --no-print-directory test-unit test-fuzz-replay test-integration test-systemd

test-unit: $(UNIT_BINS)
	$(Q)scripts/run-unit.sh $(UNIT_BINS)

test-fuzz-replay: $(FUZZ_REPLAY_BINS)
	$(Q)set -e; for t in $(FUZZ_TARGETS); do \
	    $(B)/fuzz-replay/$$t tests/fuzz/seeds/$$t tests/fuzz/regressions/$$t || \
	    { echo "fuzz replay: $$t FAILED (see tests/fuzz/regressions/$$t)"; exit 1; }; \
	done

test-integration: $(PROG_BINS) $(BIN)/recd-load
	$(Q)RECD_BIN=$(abspath $(BIN)/recd) $(PYTHON) -m pytest -q -ra tests/integration

test-systemd:
	$(Q)scripts/verify-systemd.sh

# ASan + UBSan: separate tree so normal objects are untouched.
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan: deps-test
	$(Q)$(MAKE) --no-print-directory B=build/asan BIN=build/asan/bin OPT=-O1 \
	    SANFLAGS="$(ASAN_FLAGS)" all $(UNIT_BINS:$(B)/%=build/asan/%) \
	    $(FUZZ_REPLAY_BINS:$(B)/%=build/asan/%)
	$(Q)ASAN_OPTIONS=detect_leaks=1 $(MAKE) --no-print-directory B=build/asan \
	    SANFLAGS="$(ASAN_FLAGS)" OPT=-O1 test-fuzz-replay
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    scripts/run-unit.sh $(UNIT_BINS:$(B)/%=build/asan/%)
	$(Q)ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    RECD_BIN=$(abspath build/asan/bin/recd) RECD_TRAIN_BIN=$(abspath build/asan/bin/recd-train) \
	    RECD_SANITIZED=1 \
	    $(PYTHON) -m pytest -q -ra tests/integration

# ---- fuzzing (clang + libFuzzer) ----------------------------------------------
fuzz: deps-test
	$(Q)scripts/fuzz.sh $(FUZZ_SECONDS)
fuzz-smoke: deps-test
	$(Q)scripts/fuzz.sh 10

# ---- benchmark ----------------------------------------------------------------
# bench-ann: Flat / IVF / HNSW against a plain sgemv floor, N = 100k and 1M
# (--big; about 2.5 minutes on 2 cores). HNSW at 1M needs --hnsw-big (its
# build alone takes minutes on Debian's generic FAISS).
BENCH_ANN_ARGS ?= --big

$(B)/bench/%: $(B)/obj/loadtest/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL)

bench: deps-bench all $(B)/bench/bench_ann $(B)/bench/bench_rank
	$(Q)loadtest/bench_healthz.sh $(abspath $(BIN)/recd)
	$(Q)$(B)/bench/bench_ann $(BENCH_ANN_ARGS)
	$(Q)$(B)/bench/bench_rank
	$(Q)loadtest/bench_recommend.sh $(abspath $(BIN))
	$(Q)loadtest/bench_events.sh $(abspath $(BIN))
	$(Q)loadtest/bench_swap.sh $(abspath $(BIN))
	$(Q)loadtest/bench_train.sh $(abspath $(BIN))
	$(Q)loadtest/sweep --scenario $(SCENARIO) --bin $(BIN) --seconds 10 --points $(SWEEP_POINTS)

# bench-swap: open-loop /v1/recommend p99 steady vs during continuous swaps
# vs while the trainer runs, peak RSS during a swap, publish-to-serving
# time, on models/default (about 1.5 minutes).
bench-swap: deps-bench all
	$(Q)loadtest/bench_swap.sh $(abspath $(BIN))

# bench-events: POST /v1/events per fsync policy at batch sizes 1 and 100,
# then /v1/recommend p99 with and without an events load (about 1 minute).
bench-events: deps-bench all
	$(Q)loadtest/bench_events.sh $(abspath $(BIN))

bench-rank: $(B)/bench/bench_rank
	$(Q)$(B)/bench/bench_rank

bench-recommend: deps-bench all
	$(Q)loadtest/bench_recommend.sh $(abspath $(BIN))

bench-ann: $(B)/bench/bench_ann
	$(Q)$(B)/bench/bench_ann $(BENCH_ANN_ARGS)

# bench-train: recd-train fit vs loadtest/torch_train.py (skipped without
# python3-torch), one thread each; then what `make models` runs, timed
# into a temporary directory. About 1.5 minutes on 2 cores.
bench-train: all
	$(Q)loadtest/bench_train.sh $(abspath $(BIN))

# soak: loadtest/crash_harness.py kills recd with SIGKILL under concurrent
# POST /v1/events load, ROUNDS times (default 200) per fsync policy (always,
# interval_ms), and checks after every restart that each acknowledged event
# is in the log exactly once; SOAK_ARGS passes more options (--clients,
# --max-delay, --seed, --keep). Exit status non-zero on any violation.
soak: all
	$(Q)RECD_BIN=$(abspath $(BIN)/recd) $(PYTHON) loadtest/crash_harness.py \
	    --rounds $(or $(ROUNDS),200) $(SOAK_ARGS)

# sweep: the closed-loop peak (wrk over recd-load's dumped requests), then
# open-loop recd-load points at SWEEP_POINTS percent of it, on its own recd;
# results in loadtest/results/sweep-<scenario>-<UTC>.{json,txt}. About
# 4 minutes at the defaults. Not part of `make bench` (run it on a quiet machine).
SCENARIO      ?= loadtest/scenarios/mixed.json
SWEEP_SECONDS ?= 30
SWEEP_POINTS  ?= 25,50,75,90,100,120
SWEEP_ARGS    ?=
sweep: deps-bench all
	$(Q)loadtest/sweep --scenario $(SCENARIO) --bin $(BIN) --seconds $(SWEEP_SECONDS) \
	    --points $(SWEEP_POINTS) $(SWEEP_ARGS)

# ---- housekeeping ---------------------------------------------------------------
format:
	clang-format -i $(LIB_SRCS) $(wildcard src/*/*.cpp src/*/*.h include/recd/*.h daemon/*.c daemon/train/*.c daemon/train/*.h tests/unit/*.c tests/fuzz/*.c loadtest/*.c loadtest/load/*.c loadtest/load/*.h)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/recd \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/recd/models
	install -m 0755 $(PROG_BINS) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|"data_dir": *"[^"]*"|"data_dir": "/var/lib/recd"|' \
	    -e 's|"models_dir": *"[^"]*"|"models_dir": "$(PREFIX)/share/recd/models"|' \
	    -e 's|"listen": *"127.0.0.1:8080"|"listen": "0.0.0.0:8080"|' \
	    conf/recd.json > $(DESTDIR)$(SYSCONFDIR)/recd/recd.json
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/recd/recd.json
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/recd.service > \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system/recd.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/recd.service
	@# the default model, when `make models` has built it
	if [ -d models/default ]; then cp -a models/default $(DESTDIR)$(PREFIX)/share/recd/models/; fi

uninstall:
	rm -f $(PROGS:%=$(DESTDIR)$(PREFIX)/bin/%) $(DESTDIR)$(PREFIX)/lib/systemd/system/recd.service
	@echo "left $(DESTDIR)$(SYSCONFDIR)/recd in place (configuration)"

clean:
	rm -rf build bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
