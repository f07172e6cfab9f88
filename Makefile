# i2v build. Only libc, libm and pthreads are linked (unless CUDA=1).
#   make                 the program ./i2v (float, SIMD for this machine)
#   make test            every test program, in float and in double precision, then the summary line
#   make PORTABLE=1 ...  no intrinsics and no -march=native (any C11 compiler)
#   make SAN=1 test      AddressSanitizer + UndefinedBehaviorSanitizer
#   make QUICK=1 test    skip the slow learning tests (SAN and PORTABLE runs do this by default)
#   make check-long      checks too long for make test (stage 1 against repeating x0: 17 minutes)
#   make bench           the quick speed benchmarks (./i2v bench; ./i2v bench metrics runs the slow one)
#   make fuzz            one libFuzzer target per parser (clang, ASan + UBSan), FUZZ_SECONDS=N each (60)
#   make install         ./i2v into $(PREFIX)/bin, the configs into $(PREFIX)/share/i2v/configs (PREFIX=/usr/local)
#   make CUDA=1          the same ./i2v with a GPU backend (cuda/*.cu by nvcc, cuBLAS, cuDNN); the device is
#                        chosen at run time (--device cuda or I2V_DEVICE=cuda, default cpu). CUDA_HOME
#                        (/usr/local/cuda), CUDNN_HOME (CUDA_HOME) and CUDA_ARCH (80 90: compute capabilities
#                        to compile for, PTX of the last for newer GPUs) say where and what for.
#   make CUDA=1 test     the CPU suite, then the GPU suite; make CUDA=1 test-gpu runs the GPU suite alone
#   make CUDA_EMU=1 test-gpu  the GPU suite on this CPU, the CUDA files run by an emulator (no GPU needed)
CC      ?= cc
OPT     ?= -O3
CFLAGS  := -std=c11 -Wall -Wextra -Werror=implicit-function-declaration -Werror=int-conversion \
           -D_POSIX_C_SOURCE=200809L -pthread -fno-math-errno -I. $(OPT)
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

# The GPU backend: cuda/*.cu compiled by nvcc in the same two precisions, linked with the CUDA runtime,
# cuBLAS and cuDNN. Without CUDA=1 no CUDA file is compiled and nothing but libc, libm and pthreads is linked.
CUDA ?= 0
ifeq ($(CUDA),1)
  CUDA_HOME  ?= /usr/local/cuda
  CUDNN_HOME ?= $(CUDA_HOME)
  CUDA_ARCH  ?= 80 90
  NVCC       ?= $(CUDA_HOME)/bin/nvcc
  CUDA_LIBDIRS := $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib $(CUDNN_HOME)/lib64 $(CUDNN_HOME)/lib)
  CFLAGS  += -DI2V_CUDA=1
  # -fmad=false: no fused multiply-adds in our kernels, like the C build (-std=c11), so that the per-element
  # formulas give the CPU's bits; cuBLAS and cuDNN are not affected
  NVFLAGS := -std=c++17 -O3 -fmad=false -I. -I$(CUDNN_HOME)/include -DI2V_CUDA=1 -Xcompiler -Wall,-Wextra \
             $(foreach a, $(CUDA_ARCH), -gencode arch=compute_$(a),code=sm_$(a)) \
             -gencode arch=compute_$(lastword $(CUDA_ARCH)),code=compute_$(lastword $(CUDA_ARCH))
  LDLIBS  += $(foreach d, $(CUDA_LIBDIRS), -L$(d) -Wl,-rpath,$(abspath $(d))) -lcudnn -lcublas -lcudart -lstdc++
  VARIANT := $(VARIANT)-cuda
  CUSRC   := $(wildcard cuda/*.cu)
endif
# CUDA_EMU=1 (a developer's check, no GPU or toolkit needed): the GPU build with cuda/*.cu compiled by the
# host's C++ compiler against tests/cuda_emu (the runtime, cuBLAS and cuDNN emulated on the CPU), so that
# `make CUDA_EMU=1 test-gpu` runs the GPU suite's comparisons here. Slow, and blind to what only a GPU shows.
ifeq ($(CUDA_EMU),1)
  CXX     ?= c++
  CFLAGS  += -DI2V_CUDA=1
  EMUFLAGS := -std=c++17 -O1 -g -I. -Itests/cuda_emu -D__CUDACC__ -DI2V_CUDA=1 -DI2V_CUDA_EMU \
             $(filter -fsanitize=% -fno-omit-frame-pointer, $(CFLAGS))
  LDLIBS  += -lstdc++
  VARIANT := $(VARIANT)-emu
  CUSRC   := $(wildcard cuda/*.cu)
  EMUOBJ  := emu.o
endif

B       := build/$(VARIANT)
# The library: the root's files (but the program's main) and every role folder.
DIRS    := base kernels ops networks formats datasets program
LIBSRC  := $(filter-out i2v.c, $(wildcard *.c)) $(foreach d, $(DIRS), $(wildcard $(d)/*.c))
HEADERS := $(wildcard *.h) $(foreach d, $(DIRS), $(wildcard $(d)/*.h)) $(wildcard tests/*.h) $(wildcard cuda/*.h)
TESTSRC := $(wildcard tests/test_*.c)
TESTS32 := $(patsubst tests/%.c, $(B)/f32/%, $(TESTSRC))
TESTS64 := $(patsubst tests/%.c, $(B)/f64/%, $(TESTSRC))
# the objects of the library in each precision (the CUDA ones only with CUDA=1)
LIB32   := $(patsubst %.c, $(B)/f32/%.o, $(LIBSRC)) $(patsubst %.cu, $(B)/f32/%.o, $(CUSRC)) \
           $(addprefix $(B)/f32/, $(EMUOBJ))
LIB64   := $(patsubst %.c, $(B)/f64/%.o, $(LIBSRC)) $(patsubst %.cu, $(B)/f64/%.o, $(CUSRC)) \
           $(addprefix $(B)/f64/, $(EMUOBJ))
# the GPU suite: tests/gpu_*.c, in both precisions
GPUSRC  := $(wildcard tests/gpu_*.c)
GPU32   := $(patsubst tests/%.c, $(B)/f32/%, $(GPUSRC))
GPU64   := $(patsubst tests/%.c, $(B)/f64/%, $(GPUSRC))

.PHONY: all test test-cpu test-gpu check-long bench clean i2v install fuzz
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

ifeq ($(CUDA_EMU),1)
# each launch k<<<grid, block, smem, stream>>>(args); becomes emu_launch(grid, block, smem, stream, [&] { k(args); });
EMU_REWRITE := perl -0pe 's/(\w+(?:<\w+>)?)<<<(.*?)>>>\((.*?)\);/emu_launch($$2, [&] { $$1($$3); });/gs'
EMUCUH := $(patsubst cuda/%, $(B)/emu_include/cuda/%, $(wildcard cuda/*.cuh))   # headers with launches, rewritten
$(B)/emu_include/cuda/%.cuh: cuda/%.cuh
	@mkdir -p $(dir $@)
	$(EMU_REWRITE) $< > $@
$(B)/f32/%.o: %.cu $(HEADERS) $(EMUCUH) $(wildcard tests/cuda_emu/*.h)
	@mkdir -p $(dir $@)
	$(EMU_REWRITE) $< > $(@:.o=.emu.cpp)
	$(CXX) -I$(B)/emu_include $(EMUFLAGS) -c $(@:.o=.emu.cpp) -o $@
$(B)/f64/%.o: %.cu $(HEADERS) $(EMUCUH) $(wildcard tests/cuda_emu/*.h)
	@mkdir -p $(dir $@)
	$(EMU_REWRITE) $< > $(@:.o=.emu.cpp)
	$(CXX) -I$(B)/emu_include $(EMUFLAGS) -DI2V_DOUBLE -c $(@:.o=.emu.cpp) -o $@
$(B)/f32/emu.o $(B)/f64/emu.o: tests/cuda_emu/emu.cpp $(wildcard tests/cuda_emu/*.h)
	@mkdir -p $(dir $@)
	$(CXX) $(EMUFLAGS) -c $< -o $@
else
$(B)/f32/%.o: %.cu $(HEADERS) $(wildcard cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@
$(B)/f64/%.o: %.cu $(HEADERS) $(wildcard cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -DI2V_DOUBLE -c $< -o $@
endif

$(B)/f32/i2v: $(B)/f32/i2v.o $(LIB32)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(B)/f32/test_%: tests/test_%.c $(LIB32) $(HEADERS)
	$(CC) $(CFLAGS) $< $(LIB32) -o $@ $(LDLIBS)
$(B)/f64/test_%: tests/test_%.c $(LIB64) $(HEADERS)
	$(CC) $(CFLAGS) -DI2V_DOUBLE $< $(LIB64) -o $@ $(LDLIBS)
$(B)/f32/gpu_%: tests/gpu_%.c $(LIB32) $(HEADERS)
	$(CC) $(CFLAGS) $< $(LIB32) -o $@ $(LDLIBS)
$(B)/f64/gpu_%: tests/gpu_%.c $(LIB64) $(HEADERS)
	$(CC) $(CFLAGS) -DI2V_DOUBLE $< $(LIB64) -o $@ $(LDLIBS)

$(B)/f32/long_%: tests/long_%.c $(LIB32) $(HEADERS)
	$(CC) $(CFLAGS) $< $(LIB32) -o $@ $(LDLIBS)

# the fuzz targets are part of the replay test
$(B)/f32/test_fuzz_replay $(B)/f64/test_fuzz_replay: $(wildcard tests/fuzz/*)

$(B)/runner: tests/runner.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

test-cpu: i2v $(B)/runner $(TESTS32) $(TESTS64)   # test_program runs ./i2v
	I2V_QUICK=$(QUICK) $(B)/runner $(TESTS64) $(TESTS32)

# The GPU suite (every op on the GPU against the CPU, the models on both devices). Without a GPU each
# program says `skipped: no GPU` and passes.
ifneq ($(CUDA)$(CUDA_EMU),0)
test: test-cpu
	$(MAKE) test-gpu
test-gpu: i2v $(B)/runner $(GPU32) $(GPU64)
	I2V_QUICK=$(QUICK) $(B)/runner $(GPU64) $(GPU32)
else
test: test-cpu
test-gpu:
	@echo "test-gpu: the GPU suite needs the GPU build: make CUDA=1 test-gpu"; exit 2
endif

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
