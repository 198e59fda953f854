# acrfs — plain Makefile (model: fuse-archive). Build products live in
# $(BUILD); each layer is its own static archive and the binary links them in
# dependency order (fs → registry → auth → common, fs → image → common), so
# an upward call fails at link time; `make check-layers` also proves it per
# archive (each links against the layers below it alone) and finds pairs of
# files that call each other.
#
#   make                  ./acrfs
#   make ASAN=1 UBSAN=1   sanitized ./acrfs (objects in build/asan-ubsan)
#   make DEBUG=1          -O0
#   make WERROR=1         warnings are errors (CI)
#   make check            install what is missing, build, run every test
#   make demo / demo-stop local registry with a sample image, mounted at ./mnt
#   make bench            bench/listing.sh and bench/content.sh
#   make install          acrfs, acrfs(1) and the docs under $(DESTDIR)$(PREFIX)
#   make uninstall        removes exactly what install put there
#   make format / check-format

CC      ?= cc
PKGS    := fuse3 libcurl libcjson zlib libcrypto libzstd
# ISA-L inflates gzip layers ~2x faster than zlib (image/zran.c); used when
# libisal-dev is installed, else zlib alone. ISAL=0 forces zlib.
ISAL    ?= $(shell pkg-config --exists libisal 2>/dev/null && echo 1 || echo 0)
ifeq ($(ISAL),1)
PKGS    += libisal
CPPFLAGS += -DACRFS_HAVE_ISAL
endif
BIN     ?= acrfs
VERSION := 0.1.0

VARIANT := release
SAN     :=
ifeq ($(DEBUG),1)
VARIANT := debug
endif
ifeq ($(ASAN),1)
SAN     += -fsanitize=address
VARIANT := asan
endif
ifeq ($(UBSAN),1)
SAN     += -fsanitize=undefined -fno-sanitize-recover=undefined
VARIANT := $(VARIANT)-ubsan
endif
BUILD   ?= build/$(VARIANT)

OPT     := $(if $(filter 1,$(DEBUG)),-O0,-O2)
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wwrite-strings $(if $(filter 1,$(WERROR)),-Werror)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS += -I. -DACRFS_VERSION=\"$(VERSION)\" -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=312
CFLAGS   ?= $(OPT) -g
ALLCFLAGS = -std=gnu11 $(CFLAGS) $(WARN) $(SAN) $(PKG_CFLAGS) -MMD -MP
LDLIBS  += $(PKG_LIBS) -lpthread
LDFLAGS += $(SAN)

# The FUSE edge: the only files that include libfuse.
EDGE_SRC   := fs/main.c $(sort $(wildcard fs/ll*.c))
COMMON_SRC := $(sort $(wildcard common/*.c))
AUTH_SRC   := $(sort $(wildcard auth/*.c))
REG_SRC    := $(sort $(wildcard registry/*.c))
IMAGE_SRC  := $(sort $(wildcard image/*.c))
FS_SRC     := $(filter-out $(EDGE_SRC),$(sort $(wildcard fs/*.c)))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
TOOL_SRC   := $(sort $(wildcard tests/tools/*.c))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
LIBS := $(BUILD)/libfs.a $(BUILD)/libregistry.a $(BUILD)/libauth.a $(BUILD)/libimage.a \
        $(BUILD)/libcommon.a
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))

.PHONY: all check unit tools demo demo-stop bench format check-format check-layers clean deps \
        install uninstall
all: $(BIN)

# Objects depend on the flags they were built with: a changed flag rebuilds.
FLAGS_NOW := $(CC) $(CPPFLAGS) $(ALLCFLAGS)
FLAGS_STAMP := $(BUILD)/.flags
ifneq ($(FLAGS_NOW),$(shell cat $(FLAGS_STAMP) 2>/dev/null))
$(shell mkdir -p $(BUILD) && printf '%s' '$(subst ','\'',$(FLAGS_NOW))' >$(FLAGS_STAMP))
endif

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c -o $@ $<

$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRC))
$(BUILD)/libauth.a: $(call obj,$(AUTH_SRC))
$(BUILD)/libregistry.a: $(call obj,$(REG_SRC))
$(BUILD)/libimage.a: $(call obj,$(IMAGE_SRC))
$(BUILD)/libfs.a: $(call obj,$(FS_SRC))
$(BUILD)/lib%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(call obj,$(EDGE_SRC)) $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $(call obj,$(EDGE_SRC)) $(LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS) $(shell pkg-config --libs cmocka 2>/dev/null)

$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

unit: $(UNIT_BIN)
tools: $(TOOL_BIN)

deps:
	@tests/deps.sh

# The builds of 'make check' use every CPU unless the caller chose -j itself (CI runs
# a plain 'make check'; serial builds were minutes of one idle CPU).
CHECK_JOBS = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 2))

check:
	@tests/deps.sh
	@$(MAKE) --no-print-directory $(CHECK_JOBS) WERROR=1 all unit tools check-layers
	@$(MAKE) --no-print-directory $(CHECK_JOBS) WERROR=1 ASAN=1 UBSAN=1 BIN=build/acrfs-san build/acrfs-san unit tools
	@tests/run.sh

# The dependency picture (README "Code"): which layer may call which.
check-layers: $(LIBS) $(call obj,$(EDGE_SRC))
	@tests/check-layers.py $(BUILD)

demo:
	@tests/deps.sh
	@$(MAKE) -s --no-print-directory all
	@tests/demo.sh start

demo-stop:
	@tests/demo.sh stop

bench: all
	bench/listing.sh
	@if [ -x bench/content.sh ]; then bench/content.sh; fi

# ---- fuzzing (tests/fuzz; README "Fuzzing") --------------------------------
# Every tests/fuzz/fuzz_<t>.c is a libFuzzer target. Each build links it with
# tests/fuzz/replay.c into $(BUILD)/fuzz/replay_<t> (part of `unit`), which
# tests/integration/05-fuzz-replay.sh runs over tests/fuzz/corpus/<t>/.
# `make fuzz` rebuilds the libraries with clang-14 and
# -fsanitize=fuzzer-no-link,address,undefined in build/fuzz, links
# build/fuzz/bin/fuzz_<t> with -fsanitize=fuzzer, and runs each target for
# FUZZ_SECONDS (default 60; FUZZ_TARGETS="tar lindex" picks some) on a copy
# of its corpus: tests/fuzz/run.sh, non-zero exit on any finding.
# `make fuzz-seeds` regenerates the seed corpora (tests/fuzz/mkseeds.py).
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_COMMON := $(BUILD)/tests/fuzz/common.o
REPLAY_BIN  := $(patsubst %,$(BUILD)/fuzz/replay_%,$(FUZZ_NAMES))
FUZZ_BIN    := $(patsubst %,$(BUILD)/bin/fuzz_%,$(FUZZ_NAMES))
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined

.PHONY: fuzz fuzz-bins fuzz-seeds
unit: $(REPLAY_BIN)
tools: $(BUILD)/fuzz/mkindex

$(BUILD)/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(FUZZ_COMMON) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(LDLIBS)

$(BUILD)/fuzz/mkindex: $(BUILD)/tests/fuzz/mkindex.o $(FUZZ_COMMON) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS) $(LDLIBS)

$(BUILD)/bin/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_COMMON) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(LIBS) $(LDLIBS)

fuzz-bins: $(FUZZ_BIN)

# Keep the objects between builds (make would delete them as intermediates).
.SECONDARY: $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%.o,$(wildcard tests/fuzz/*.c))

fuzz:
	@tests/deps.sh clang-14 libfuzzer-14-dev
	@$(MAKE) --no-print-directory CC=$(FUZZ_CC) BUILD=build/fuzz SAN='$(FUZZ_SAN)' fuzz-bins
	@FUZZ_SECONDS='$(FUZZ_SECONDS)' tests/fuzz/run.sh build/fuzz/bin $(FUZZ_TARGETS)

fuzz-seeds:
	@$(MAKE) --no-print-directory tools
	tests/fuzz/mkseeds.py $(BUILD)/fuzz/mkindex

# ---- install / uninstall (GNU conventions: PREFIX, DESTDIR, INSTALL) -------
# mount.fuse3 (fstab type fuse.acrfs, systemd .mount units) finds acrfs in
# /usr/local/bin, /usr/bin or /bin: mount(8) passes it no PATH.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/acrfs
INSTALL ?= install
DOC_FILES     := README.md docs/auth.md docs/tagops.md
EXAMPLE_FILES := $(sort $(wildcard contrib/systemd/*))

install: $(BIN)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/acrfs
	$(INSTALL) -m 0644 docs/acrfs.1 $(DESTDIR)$(MANDIR)/man1/acrfs.1
	$(INSTALL) -m 0644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 $(EXAMPLE_FILES) $(DESTDIR)$(DOCDIR)/examples/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/acrfs $(DESTDIR)$(MANDIR)/man1/acrfs.1
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOC_FILES)))
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(notdir $(EXAMPLE_FILES)))
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null

FMT_SRC = $(wildcard */*.c */*.h tests/*/*.c)
format:
	clang-format -i $(FMT_SRC)
check-format:
	clang-format --dry-run -Werror $(FMT_SRC)

clean:
	rm -rf build acrfs

-include $(shell find build $(filter-out build build/%,$(BUILD)) -name '*.d' 2>/dev/null)
