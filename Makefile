# temper — one Makefile. `make` builds build/libtemper.a and build/temper.
# Sources are found by wildcard: a new src/<layer>/*.c or cli/*.c joins the build,
# a new tests/unit/test_*.c becomes a test program that `make check` runs.

CC      ?= gcc
PREFIX  ?= /usr/local
BUILD   := build
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
DEFS    := -D_GNU_SOURCE
INC     := -I. -Isrc -Iinclude
CFLAGS  ?= -std=c17 -O3 -march=native -fopenmp $(WARN) $(DEFS) $(INC) -MMD -MP
LDLIBS  := -lopenblas -lgmp -lpcre2-8 -lutf8proc -lseccomp -lm

# Sanitizer build of the library and unit tests (make check runs these too).
SAN_CFLAGS := -std=c17 -O1 -g -march=native -fopenmp -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=undefined $(WARN) $(DEFS) $(INC) -MMD -MP

LIB_SRC  := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
SAN_OBJ  := $(LIB_SRC:%.c=$(BUILD)/san/%.o)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
SAN_TESTS:= $(TEST_SRC:tests/unit/%.c=$(BUILD)/san-tests/%)

.PHONY: all install deps check test demo bench fuzz clean
all: $(BUILD)/temper $(TESTS)

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
FUZZ_CFLAGS := -std=c17 -g -O1 -march=native -fopenmp -Wno-pass-failed -fsanitize=fuzzer-no-link,address,undefined $(DEFS) $(INC)
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

install: $(BUILD)/temper
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/temper $(DESTDIR)$(PREFIX)/bin/temper

deps:
	@scripts/install-deps

test: all $(SAN_TESTS) $(FUZZERS)
	@scripts/run-tests

check: deps
	@$(MAKE) --no-print-directory test

demo: $(BUILD)/temper
	$(BUILD)/temper demo

bench: $(BUILD)/temper  # and $(BENCHES), added where it is defined (below)
	@scripts/bench

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Test tools (programs the oracle tests drive): tests/tools/*.c -> build/tools/*
TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c))
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libtemper.a $(BUILD)/obj/cli/flags.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/obj/cli/flags.o $(BUILD)/libtemper.a $(LDLIBS)
all: $(TOOLS)

# Benchmark programs: bench/*.c -> build/bench/* (make bench runs scripts/bench)
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(filter-out bench/kernels_bench.c,$(wildcard bench/*.c)))
bench: $(BENCHES)
$(BUILD)/bench/%: bench/%.c $(BUILD)/libtemper.a $(BUILD)/obj/cli/flags.o $(BUILD)/obj/cli/omp_wait.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/obj/cli/flags.o $(BUILD)/obj/cli/omp_wait.o $(BUILD)/libtemper.a $(LDLIBS)
