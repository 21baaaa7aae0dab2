# SPDX-License-Identifier: MIT
# The fuzz harnesses (GNU make; run through `make fuzz` in a configured build
# folder, which passes the variables below). Everything they reach is compiled
# again with FUZZ_CC and the fuzzer's instrumentation into tests/fuzz/obj/;
# the harnesses are tests/fuzz/fuzz-NAME.
#
#   make fuzz                               libFuzzer + ASan + UBSan (clang)
#   make fuzz FUZZ_CC=afl-clang-fast        afl++ (it turns -fsanitize=fuzzer into its driver)
#   make fuzz FUZZ_ENGINE=driver            a main() that runs files (any compiler; afl-fuzz ... @@)
#   make fuzz FUZZ_SAN=                     no sanitizers (speed, or valgrind on the driver build)
#
# A build other than the default one wants its own FUZZ_OUT folder (objects
# and harnesses), e.g. make fuzz FUZZ_CC=afl-clang-fast FUZZ_OUT=tests/fuzz/afl.

FUZZ_CC ?= clang
FUZZ_ENGINE ?= libfuzzer
FUZZ_SAN ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OPT ?= -g -O1 -fno-omit-frame-pointer
FUZZ_OUT ?= tests/fuzz
WARN = $(FUZZ_WARN)
srcdir ?= .
builddir ?= .
OBJ = $(FUZZ_OUT)/obj

HARNESSES = model infer frame request reply policy config platform plan tenants

ifeq ($(FUZZ_ENGINE),driver)
FUZZ_COMPILE_ENGINE =
FUZZ_LINK_ENGINE =
DRIVER_OBJ = $(OBJ)/tests/fuzz/driver.o
else
FUZZ_COMPILE_ENGINE = -fsanitize=fuzzer-no-link
FUZZ_LINK_ENGINE = -fsanitize=fuzzer
DRIVER_OBJ =
endif

FUZZ_CFLAGS = -std=gnu11 $(FUZZ_OPT) $(FUZZ_SAN) $(FUZZ_COMPILE_ENGINE) $(WARN) -Wno-unknown-warning-option \
	-I$(srcdir) -I$(builddir) -DGEARBOX_DATADIR='"$(FUZZ_DATADIR)"' -DFUZZ_SRCDIR='"$(abspath $(srcdir))"' \
	$(FUZZ_DEP_CFLAGS)
FUZZ_LDFLAGS = $(FUZZ_OPT) $(FUZZ_SAN) $(FUZZ_LINK_ENGINE)

# What the harnesses reach, and what that needs (kernels_neon.c is Arm's
# alone: configure's HAVE_NEON builds it into the daemon there) (one archive: the linker
# takes what each harness uses).
LIB_SOURCES = $(wildcard $(srcdir)/common/*.c) \
	$(filter-out %/opencl_kernels.c %/kernels_neon.c,$(wildcard $(srcdir)/dnn/*.c)) \
	$(wildcard $(srcdir)/governor/*.c) $(wildcard $(srcdir)/policies/*.c) \
	proto/frame.c daemon/decode.c daemon/settings.c client/infer.c
LIB_OBJS = $(patsubst %.c,$(OBJ)/%.o,$(patsubst $(srcdir)/%,%,$(LIB_SOURCES)))
LIB = $(OBJ)/libgearbox-fuzz.a

PROGRAMS = $(HARNESSES:%=$(FUZZ_OUT)/fuzz-%)

all: $(PROGRAMS)

$(OBJ)/%.o: $(srcdir)/%.c
	@mkdir -p $(@D)
	@echo "  FUZZCC   $*.c"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

# The kernels' inner loops are arithmetic: comparison tracing there costs the
# inference harness most of its speed and finds nothing the plans do not.
# They keep the sanitizers.
$(OBJ)/dnn/kernels_%.o: FUZZ_COMPILE_ENGINE =

# The daemon's code is held to -Werror by its own (gcc) build; clang warns
# about other things (an inline helper only the x86 paths of one compiler
# use), which must not stop the harnesses. The harnesses keep -Werror.
$(LIB_OBJS): WARN = $(filter-out -Werror,$(FUZZ_WARN))

$(LIB): $(LIB_OBJS)
	@rm -f $@
	@ar crs $@ $^

$(FUZZ_OUT)/fuzz-%: $(OBJ)/tests/fuzz/fuzz_%.o $(LIB) $(DRIVER_OBJ)
	@echo "  FUZZLD   $@"
	@$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $< $(DRIVER_OBJ) $(LIB) $(FUZZ_DEP_LIBS) -ldl -lm -pthread

# named, so that make keeps them (no intermediate files)
HARNESS_OBJS = $(HARNESSES:%=$(OBJ)/tests/fuzz/fuzz_%.o)
$(PROGRAMS): | $(HARNESS_OBJS)

.PHONY: all

-include $(LIB_OBJS:.o=.d) $(HARNESSES:%=$(OBJ)/tests/fuzz/fuzz_%.d)
