# quern - one non-recursive Makefile for every tool, test and benchmark.
#
#   make                 build every tool into $(BUILD)/bin
#   make deps            install the Debian packages (apt-get; root or sudo)
#   make test            build and run all tests; ends with "N passed, N failed"
#   make test SANITIZE=address,undefined
#   make MPI=1           quern-train for data-parallel training under mpirun (Open MPI),
#                        built in build-mpi
#   make demo            deps + build + ingest the sample corpus in examples/
#   make bench           side-by-side benchmarks in bench/ (make bench-deps first:
#                        PyTorch for the training peer)
#   make fuzz            build libFuzzer targets with clang (FUZZ_SECONDS=N to run)
#   make install PREFIX=/usr/local

PREFIX ?= /usr/local
SANITIZE ?=
MPI ?=
ifeq ($(MPI),1)
MPI_SUFFIX = -mpi
endif
ifeq ($(SANITIZE),)
BUILD ?= build$(MPI_SUFFIX)
else
BUILD ?= build-san$(MPI_SUFFIX)
SANFLAGS = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

OPT ?= -O2
CFLAGS ?= $(OPT) -g
PKGS = libxml-2.0 libzstd jansson libxxhash libcrypto sqlite3 zlib libpcre2-8 libutf8proc yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# OpenMP threads the model's kernels (lib/gpt2.c); empty for the fuzz build.
OMPFLAGS ?= -fopenmp
QN_CFLAGS = $(OMPFLAGS) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-Ilib $(PKG_CFLAGS) $(SANFLAGS) -pthread -MMD -MP
# C++ only for the shims over C++ libraries (clean/lang.cc over CLD2).
CXXFLAGS ?= $(OPT) -g
QN_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -Ilib $(PKG_CFLAGS) $(SANFLAGS) -pthread -MMD -MP
QN_LDFLAGS = $(SANFLAGS) $(OMPFLAGS) -pthread $(LDFLAGS)
LIBS = $(PKG_LIBS) -lcsv -lcld2 -lopenblas -lstdc++ -lm

DEB_PACKAGES = build-essential pkg-config clang libclang-rt-14-dev \
	libpcre2-dev libxml2-dev libzstd-dev libopenblas-dev libcsv-dev libjansson-dev \
	libyaml-dev libxxhash-dev libssl-dev libutf8proc-dev libsqlite3-dev zlib1g-dev \
	libcld2-dev zstd gzip jq time libxml2-utils w3m hyperfine python3 python3-jsonschema nodejs \
	sentencepiece python3-numpy python3-xxhash chromium python3-pil openmpi-bin libopenmpi-dev slurm-wlm munge

LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIBQN := $(BUILD)/libquern.a

INGEST_SRC := $(filter-out ingest/ingest.c,$(wildcard ingest/*.c))
INGEST_OBJ := $(INGEST_SRC:%.c=$(BUILD)/%.o)
LIBINGEST := $(BUILD)/libingest.a

# quern-clean's modules (filters, normalization) come before its main.
CLEAN_SRC := $(filter-out clean/clean.c,$(wildcard clean/*.c)) $(wildcard clean/*.cc)
CLEAN_OBJ := $(patsubst %.cc,$(BUILD)/%.o,$(CLEAN_SRC:%.c=$(BUILD)/%.o))
LIBCLEAN := $(BUILD)/libclean.a

TOOLS := $(BUILD)/bin/quern $(BUILD)/bin/quern-ingest $(BUILD)/bin/quern-clean \
	$(BUILD)/bin/quern-tokenize $(BUILD)/bin/quern-train
MANS := quern/quern.1 ingest/quern-ingest.1 clean/quern-clean.1 tokenize/quern-tokenize.1 \
	train/quern-train.1
# quern-audit, once its main is there.
ifneq ($(wildcard audit/audit.c),)
TOOLS += $(BUILD)/bin/quern-audit
MANS += $(wildcard audit/quern-audit.1)
endif
ifneq ($(wildcard run/run.c),)
TOOLS += $(BUILD)/bin/quern-run
MANS += $(wildcard run/quern-run.1)
endif

# quern-train's modules (the shard loader) come before its main; dist.c
# (MPI) is compiled twice, with and without MPI, beside train.c.
TRAIN_SRC := $(filter-out train/train.c train/dist.c,$(wildcard train/*.c))
TRAIN_OBJ := $(TRAIN_SRC:%.c=$(BUILD)/%.o)
LIBTRAIN := $(BUILD)/libtrain.a

# quern-audit's commands and reports come before its main.
AUDIT_SRC := $(filter-out audit/audit.c,$(wildcard audit/*.c))
AUDIT_OBJ := $(AUDIT_SRC:%.c=$(BUILD)/%.o)
LIBAUDIT := $(BUILD)/libaudit.a

# quern-run's modules come before its main.
RUN_SRC := $(filter-out run/run.c,$(wildcard run/*.c))
RUN_OBJ := $(RUN_SRC:%.c=$(BUILD)/%.o)
LIBRUN := $(BUILD)/librun.a

# Data-parallel quern-train (docs/training.md): only train/train.c and
# train/dist.c change, compiled with -DQN_MPI and mpicc's flags into
# $(BUILD)/mpi/ and linked with the same libraries plus MPI's. Every build
# with mpicc makes this variant, $(BUILD)/mpi/bin/quern-train, for `make
# test` (two compiles and a link); MPI=1 makes it the quern-train of
# $(BUILD)/bin (and of make install).
MPICC ?= mpicc
HAVE_MPICC := $(shell command -v $(MPICC) 2>/dev/null)
MPI_CFLAGS = $(patsubst -I%,-isystem %,$(shell $(MPICC) --showme:compile 2>/dev/null))
MPI_LIBS = $(shell $(MPICC) --showme:link 2>/dev/null)
MPI_TRAIN := $(BUILD)/mpi/bin/quern-train
MPI_TRAIN_OBJ := $(BUILD)/mpi/train/train.o $(BUILD)/mpi/train/dist.o
ifeq ($(MPI),1)
ifeq ($(HAVE_MPICC)$(filter deps,$(MAKECMDGOALS)),)
$(error MPI=1 needs Open MPI's $(MPICC): make deps, or apt-get install openmpi-bin libopenmpi-dev)
endif
QUERN_TRAIN_OBJ := $(MPI_TRAIN_OBJ)
QUERN_TRAIN_LIBS = $(MPI_LIBS)
else
QUERN_TRAIN_OBJ := $(BUILD)/train/train.o $(BUILD)/train/dist.o
QUERN_TRAIN_LIBS =
endif

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/replay_%)
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))

.PHONY: all deps bench-deps test check demo bench fuzz install clean
.DELETE_ON_ERROR:
.SECONDARY:

# Tests may look inside the tools; the library may not.
$(BUILD)/tests/%.o: QN_CFLAGS += -Iingest -Iclean -Itrain -Iaudit -Irun
$(BUILD)/clean/%.o: QN_CFLAGS += -Iclean
$(BUILD)/train/%.o: QN_CFLAGS += -Itrain
$(BUILD)/audit/%.o: QN_CFLAGS += -Iaudit
$(BUILD)/run/%.o: QN_CFLAGS += -Irun
$(BUILD)/mpi/%.o: QN_CFLAGS += -Itrain -DQN_MPI $(MPI_CFLAGS)
# The model's elementwise loops vectorize at -O3 (gcc's -O2 cost model declines them).
$(BUILD)/lib/gpt2.o: QN_CFLAGS += -O3 -fno-math-errno
$(BUILD)/lib/linclass.o: QN_CFLAGS += -O3 -fno-math-errno

all: $(TOOLS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(QN_CFLAGS) -c -o $@ $<

$(BUILD)/mpi/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(QN_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(QN_CXXFLAGS) -c -o $@ $<

$(LIBQN): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBINGEST): $(INGEST_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBCLEAN): $(CLEAN_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBTRAIN): $(TRAIN_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBAUDIT): $(AUDIT_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBRUN): $(RUN_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/bin/quern: $(BUILD)/quern/quern.o $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/quern-ingest: $(BUILD)/ingest/ingest.o $(LIBINGEST) $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/quern-clean: $(BUILD)/clean/clean.o $(LIBCLEAN) $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/quern-tokenize: $(BUILD)/tokenize/tokenize.o $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/quern-train: $(QUERN_TRAIN_OBJ) $(LIBTRAIN) $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS) $(QUERN_TRAIN_LIBS)

$(MPI_TRAIN): $(MPI_TRAIN_OBJ) $(LIBTRAIN) $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS) $(MPI_LIBS)

$(BUILD)/bin/quern-audit: $(BUILD)/audit/audit.o $(LIBAUDIT) $(LIBTRAIN) $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/quern-run: $(BUILD)/run/run.o $(if $(RUN_OBJ),$(LIBRUN)) $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(LIBINGEST) $(LIBCLEAN) $(LIBTRAIN) \
		$(if $(AUDIT_OBJ),$(LIBAUDIT)) $(if $(RUN_OBJ),$(LIBRUN)) $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/replay_%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay.o $(LIBINGEST) $(LIBCLEAN) \
		$(LIBTRAIN) $(if $(AUDIT_OBJ),$(LIBAUDIT)) $(if $(RUN_OBJ),$(LIBRUN)) $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(LIBQN)
	@mkdir -p $(@D)
	$(CC) $(QN_LDFLAGS) -o $@ $^ $(LIBS)

test check: $(TOOLS) $(UNIT_BIN) $(FUZZ_REPLAY) $(TEST_TOOLS) $(if $(HAVE_MPICC),$(MPI_TRAIN))
	@sh tests/run.sh $(BUILD)

deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
		$(DEB_PACKAGES) && \
	{ command -v npm >/dev/null || \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends npm; }

# The benchmarks' heavier peers (PyTorch, ~1 GB installed): only make bench needs them.
BENCH_PACKAGES = python3-torch fasttext
bench-deps: deps
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
		$(BENCH_PACKAGES)

demo:
	$(MAKE) deps
	$(MAKE) all
	sh examples/demo.sh $(BUILD)

bench: $(TOOLS) $(TEST_TOOLS) $(if $(HAVE_MPICC),$(MPI_TRAIN))
	sh bench/run.sh $(BUILD)
	sh bench/classify.sh $(BUILD)
	sh bench/scaleout.sh $(BUILD)

# libFuzzer builds: clang, -fsanitize=fuzzer,address; FUZZ_SECONDS runs each.
FUZZ_BUILD = build-fuzz
FUZZ_SECONDS ?= 0
fuzz:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang CXX=clang++ SANITIZE=address,undefined OMPFLAGS= \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" CXXFLAGS="-O1 -g -fsanitize=fuzzer-no-link" \
		$(FUZZ_BUILD)/libquern.a $(FUZZ_BUILD)/libingest.a \
		$(FUZZ_BUILD)/libclean.a $(FUZZ_BUILD)/libaudit.a $(FUZZ_BUILD)/librun.a
	@for src in $(FUZZ_SRC); do \
		t=$$(basename $$src .c); \
		echo "clang $$t"; \
		clang -O1 -g -std=c11 -D_GNU_SOURCE -Ilib -Iingest -Iclean -Iaudit -Irun $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
			-o $(FUZZ_BUILD)/$$t $$src $(FUZZ_BUILD)/libingest.a $(FUZZ_BUILD)/libclean.a $(FUZZ_BUILD)/libaudit.a $(FUZZ_BUILD)/librun.a $(FUZZ_BUILD)/libquern.a $(LIBS) || exit 1; \
	done
	@if [ "$(FUZZ_SECONDS)" -gt 0 ]; then sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS); fi

install: $(TOOLS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(MANS) $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf build build-san build-fuzz build-mpi build-san-mpi

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
