# i2v build. Only libc, libm and pthreads are linked.
#   make                 the program ./i2v (float, SIMD for this machine)
#   make test            every test program, in float and in double precision, then the summary line
#   make PORTABLE=1 ...  no intrinsics and no -march=native (any C11 compiler)
#   make SAN=1 test      AddressSanitizer + UndefinedBehaviorSanitizer
#   make QUICK=1 test    skip the slow learning tests (SAN and PORTABLE runs do this by default)
#   make check-long      checks too long for make test (stage 1 against repeating x0: 17 minutes)
#   make bench           the quick speed benchmarks (./i2v bench; ./i2v bench metrics runs the slow one)
#   make fuzz            one libFuzzer target per parser (clang, ASan + UBSan), FUZZ_SECONDS=N each (60)
#   make install         ./i2v into $(PREFIX)/bin, the configs into $(PREFIX)/share/i2v/configs (PREFIX=/usr/local)
# The CUDA build does not exist yet: refuse, rather than build the CPU program under its name.
ifeq ($(CUDA),1)
  $(error make CUDA=1: the CUDA build is not written yet; plain 'make' builds the CPU program)
endif

CC      ?= cc
OPT     ?= -O3
CFLAGS  := -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -pthread -fno-math-errno -I. $(OPT)
# the built-in configs, when ./configs and the program's own folder have none: this source tree's
CFLAGS  += -DI2V_CONFIG_DIR='"$(CURDIR)/configs"'

LDLIBS  := -lm -pthread
VARIANT := opt

ifeq ($(PORTABLE),1)
  CFLAGS  += -DI2V_PORTABLE
  VARIANT := portable
  QUICK   ?= 1
else
  CFLAGS  += -march=native
endif
ifeq ($(SAN),1)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -g -O1
  LDLIBS  += -fsanitize=address,undefined
  VARIANT := $(VARIANT)-san
  QUICK   ?= 1
endif
QUICK ?= 0

B       := build/$(VARIANT)
# The library: the root's files (but the program's main) and every role folder.
DIRS    := base kernels ops networks formats datasets program
LIBSRC  := $(filter-out i2v.c, $(wildcard *.c)) $(foreach d, $(DIRS), $(wildcard $(d)/*.c))
HEADERS := $(wildcard *.h) $(foreach d, $(DIRS), $(wildcard $(d)/*.h)) $(wildcard tests/*.h)
TESTSRC := $(wildcard tests/test_*.c)
TESTS32 := $(patsubst tests/%.c, $(B)/f32/%, $(TESTSRC))
TESTS64 := $(patsubst tests/%.c, $(B)/f64/%, $(TESTSRC))

.PHONY: all test check-long bench clean i2v install fuzz
.SECONDARY:   # keep the object files between builds
all: i2v

# ./i2v is the binary of the variant just built: checked on every make (phony), copied when it differs,
# so `make` after `make PORTABLE=1` brings the native binary back although ./i2v is newer than it.
i2v: $(B)/f32/i2v
	@cmp -s $< $@ || { echo "cp $< $@"; cp $< $@.new && mv -f $@.new $@; }   # a rename works while an old ./i2v runs

$(B)/f32/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(B)/f64/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DI2V_DOUBLE -c $< -o $@

$(B)/f32/i2v: $(B)/f32/i2v.o $(patsubst %.c, $(B)/f32/%.o, $(LIBSRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(B)/f32/test_%: tests/test_%.c $(patsubst %.c, $(B)/f32/%.o, $(LIBSRC)) $(HEADERS)
	$(CC) $(CFLAGS) $< $(patsubst %.c, $(B)/f32/%.o, $(LIBSRC)) -o $@ $(LDLIBS)
$(B)/f64/test_%: tests/test_%.c $(patsubst %.c, $(B)/f64/%.o, $(LIBSRC)) $(HEADERS)
	$(CC) $(CFLAGS) -DI2V_DOUBLE $< $(patsubst %.c, $(B)/f64/%.o, $(LIBSRC)) -o $@ $(LDLIBS)

$(B)/f32/long_%: tests/long_%.c $(patsubst %.c, $(B)/f32/%.o, $(LIBSRC)) $(HEADERS)
	$(CC) $(CFLAGS) $< $(patsubst %.c, $(B)/f32/%.o, $(LIBSRC)) -o $@ $(LDLIBS)

# the fuzz targets are part of the replay test
$(B)/f32/test_fuzz_replay $(B)/f64/test_fuzz_replay: $(wildcard tests/fuzz/*)

$(B)/runner: tests/runner.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

test: i2v $(B)/runner $(TESTS32) $(TESTS64)   # test_program runs ./i2v
	I2V_QUICK=$(QUICK) $(B)/runner $(TESTS64) $(TESTS32)

# checks too long for `make test` (about 17 minutes on 2 cores): stage 1 against the repeat-x0 baseline
check-long: $(B)/runner $(B)/f32/long_learning
	$(B)/runner $(B)/f32/long_learning

bench: i2v
	./i2v bench

# Fuzzing: tests/fuzz/fuzz_<name>.c is one libFuzzer target per parser, built with clang, AddressSanitizer
# and UndefinedBehaviorSanitizer (any undefined behaviour stops the run); tests/fuzz/run.sh runs each for
# FUZZ_SECONDS from the seed corpora under tests/data and fails on any finding, which it leaves in
# build/fuzz/findings/ (saved under tests/data/fuzz/<name>/, make test replays it).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FZ           := build/fuzz
FUZZ_FLAGS   := -std=c11 -D_POSIX_C_SOURCE=200809L -pthread -I. -O1 -g -DI2V_PORTABLE -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c, %, $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJS    := $(patsubst %.c, $(FZ)/obj/%.o, $(LIBSRC))

$(FZ)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FZ)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -DI2V_LIBFUZZER $< $(FUZZ_OBJS) -o $@ -lm
fuzz:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz: $(FUZZ_CC) not found (libFuzzer comes with clang)"; exit 1; }
	$(MAKE) $(patsubst %, $(FZ)/fuzz_%, $(FUZZ_NAMES))
	sh tests/fuzz/run.sh $(FZ) $(FUZZ_SECONDS) $(FUZZ_NAMES)

# The program finds its configs in ../share/i2v/configs beside its own folder, so the installed copy works
# from any directory.
PREFIX  ?= /usr/local
install: i2v
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/i2v
	cp i2v $(DESTDIR)$(PREFIX)/bin/i2v
	rm -rf $(DESTDIR)$(PREFIX)/share/i2v/configs
	cp -R configs $(DESTDIR)$(PREFIX)/share/i2v/configs

clean:
	rm -rf build i2v
