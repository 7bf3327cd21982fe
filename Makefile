# temper — one Makefile. `make` builds build/libtemper.a and build/temper.
# Sources are found by wildcard: a new src/<layer>/*.c or cli/*.c joins the build,
# a new tests/unit/test_*.c becomes a test program that `make check` runs.

CC      ?= gcc
PREFIX  ?= /usr/local
# The binary is portable: x86-64-v3 (Haswell / Zen on: AVX2 + FMA), and the kernels pick
# their AVX-512 / AMX paths at run time where the CPU has them (src/kernels/cpu_isa.h).
# MARCH=native also lets the compiler use AVX-512 in the plain loops.
MARCH   ?= x86-64-v3
BUILD   := build
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
DEFS    := -D_GNU_SOURCE -DTEMPER_DATADIR='"$(PREFIX)/share/temper/data"'
INC     := -I. -Isrc -Iinclude -I/usr/include/stb
CFLAGS  ?= -std=c17 -O3 -march=$(MARCH) -fopenmp $(WARN) $(DEFS) $(INC) -MMD -MP
LDLIBS  := -lstb -lyaml -lopenblas -lgmp -lpcre2-8 -lutf8proc -lseccomp -lm

# MPI (src/dist, data-parallel training and sampling) when mpicc is present: its compile
# flags for src/dist/dist_mpi.c only, its link flags for every binary. Without mpicc
# temper builds and runs as one process (make demo needs no MPI).
HAVE_MPI  := $(shell command -v mpicc >/dev/null 2>&1 && echo 1)
ifeq ($(HAVE_MPI),1)
MPI_CFLAGS := -DTEMPER_HAVE_MPI $(shell mpicc --showme:compile)
LDLIBS     += $(shell mpicc --showme:link)
endif

# Sanitizer build of the library and unit tests (make check runs these too).
SAN_CFLAGS := -std=c17 -O1 -g -march=$(MARCH) -fopenmp -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=undefined $(WARN) $(DEFS) $(INC) -MMD -MP

LIB_SRC  := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
SAN_OBJ  := $(LIB_SRC:%.c=$(BUILD)/san/%.o)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
SAN_TESTS:= $(TEST_SRC:tests/unit/%.c=$(BUILD)/san-tests/%)

.PHONY: all install deps build-deps check test demo bench fuzz clean
all: $(BUILD)/temper $(TESTS)

# only the MPI backend sees mpi.h (all builds: native, sanitizer, AVX2, fuzz); it is rebuilt
# when MPI appears or goes (make check installs it after a first plain build): the flags are
# kept in a file that changes only when they do
MPI_STAMP := $(BUILD)/mpi.flags
$(shell mkdir -p $(BUILD) && (echo '$(MPI_CFLAGS)' | cmp -s - $(MPI_STAMP) || echo '$(MPI_CFLAGS)' > $(MPI_STAMP)))
$(BUILD)/obj/src/dist/dist_mpi.o $(BUILD)/san/src/dist/dist_mpi.o $(BUILD)/fuzz-obj/src/dist/dist_mpi.o: $(MPI_STAMP)
$(BUILD)/obj/src/dist/dist_mpi.o: CFLAGS += $(MPI_CFLAGS)
$(BUILD)/san/src/dist/dist_mpi.o: SAN_CFLAGS += $(MPI_CFLAGS)
$(BUILD)/fuzz-obj/src/dist/dist_mpi.o: FUZZ_CFLAGS += $(MPI_CFLAGS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -c $< -o $@

$(BUILD)/libtemper.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libtemper-san.a: $(SAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/temper: $(CLI_OBJ) $(BUILD)/libtemper.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libtemper.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(BUILD)/libtemper.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libtemper.a $(LDLIBS)

$(BUILD)/san-tests/%: tests/unit/%.c tests/unit/test.h $(BUILD)/libtemper-san.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libtemper-san.a $(LDLIBS)

# libFuzzer targets: tests/fuzz/fuzz_*.c -> build/fuzz/fuzz_*, each linked against the
# library built by clang with coverage instrumentation (make check runs each for a
# bounded time, scripts/run-tests).
FUZZ_CFLAGS := -std=c17 -g -O1 -march=$(MARCH) -fopenmp -Wno-pass-failed -fsanitize=fuzzer-no-link,address,undefined $(DEFS) $(INC) -MMD -MP
FUZZ_OBJ    := $(LIB_SRC:%.c=$(BUILD)/fuzz-obj/%.o)
FUZZERS     := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
$(BUILD)/fuzz-obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -Wno-unused-command-line-argument -c $< -o $@
$(BUILD)/libtemper-fuzz.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libtemper-fuzz.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libtemper-fuzz.a $(LDLIBS)

# The data sets go to $(PREFIX)/share/temper/data, where `--data gsm8k|math500` finds them.
install: $(BUILD)/temper
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/temper/data/gsm8k $(DESTDIR)$(PREFIX)/share/temper/data/math500
	install -m 755 $(BUILD)/temper $(DESTDIR)$(PREFIX)/bin/temper
	install -m 644 data/gsm8k/* $(DESTDIR)$(PREFIX)/share/temper/data/gsm8k/
	install -m 644 data/math500/* $(DESTDIR)$(PREFIX)/share/temper/data/math500/
	@echo "installed $(PREFIX)/bin/temper, built with -march=$(MARCH)$(if $(filter x86-64-v3,$(MARCH)),: it runs on any x86-64 CPU with AVX2 and FMA,)"

deps:
	@scripts/install-deps

build-deps:
	@scripts/install-deps --build

test: all $(SAN_TESTS) $(FUZZERS)
	@scripts/run-tests

check: deps
	@$(MAKE) --no-print-directory test

# The README's first command on a fresh machine: install what the build needs, build, run.
demo: build-deps
	@$(MAKE) --no-print-directory $(BUILD)/temper
	$(BUILD)/temper demo

bench: $(BUILD)/temper  # and $(BENCHES), added where it is defined (below)
	@scripts/bench

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Test tools (programs the oracle tests drive): tests/tools/*.c -> build/tools/*
TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c))
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libtemper.a $(BUILD)/obj/cli/flags.o $(BUILD)/obj/cli/config_yaml.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/obj/cli/flags.o $(BUILD)/obj/cli/config_yaml.o $(BUILD)/libtemper.a $(LDLIBS)
all: $(TOOLS)

# Benchmark programs: bench/*.c -> build/bench/* (make bench runs scripts/bench)
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(filter-out bench/kernels_bench.c,$(wildcard bench/*.c)))
bench: $(BENCHES)
$(BUILD)/bench/%: bench/%.c $(BUILD)/libtemper.a $(BUILD)/obj/cli/flags.o $(BUILD)/obj/cli/config_yaml.o $(BUILD)/obj/cli/omp_wait.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/obj/cli/flags.o $(BUILD)/obj/cli/config_yaml.o $(BUILD)/obj/cli/omp_wait.o $(BUILD)/libtemper.a $(LDLIBS)

# test_oom fails each allocation of the tokenizer in turn. Its malloc family is wrapped
# at link time (-Wl,--wrap: calls from libtemper.a go to the test's __wrap_malloc...),
# so it has its own link rules; these explicit rules take precedence over the patterns.
OOM_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=aligned_alloc,--wrap=free
$(BUILD)/tests/test_oom: tests/unit/test_oom.c tests/unit/test.h tests/unit/tok_fixture.h $(BUILD)/libtemper.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libtemper.a $(LDLIBS) $(OOM_WRAP)
$(BUILD)/san-tests/test_oom: tests/unit/test_oom.c tests/unit/test.h tests/unit/tok_fixture.h $(BUILD)/libtemper-san.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libtemper-san.a $(LDLIBS) $(OOM_WRAP)
