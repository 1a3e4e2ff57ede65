# devnode build. `make run` and `make test` are the two entry points (see README).
# Objects go to build/rel (the binary) and build/asan (unit tests under ASan+UBSan).

PKGS     := libuv yaml-0.1 libzmq msgpack jansson ncursesw zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC       ?= cc
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-format-truncation
CFLAGS   ?= -O2 -g
BASEFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -I. $(PKG_CFLAGS)
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Everything but the entry point goes into a static core library that the
# binary and the unit tests link against.
CORE_SRC := $(wildcard common/*.c node/*.c sockets/*.c tail/*.c tui/*.c) \
            $(filter-out cli/main.c,$(wildcard cli/*.c))
MAIN_SRC := cli/main.c
UNIT_SRC := $(wildcard tests/unit/test_*.c)

REL_OBJ  := $(CORE_SRC:%.c=build/rel/%.o)
ASAN_OBJ := $(CORE_SRC:%.c=build/asan/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

.PHONY: all deps run test unit e2e bench clean helpers
all: devnode helpers

# Small programs the e2e tests and benches run as workers.
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=build/helpers/%)
helpers: $(HELPER_BIN) build/examples/web

# The plain HTTP worker of examples/web: shared-socket tests and benches run it.
build/examples/web: examples/web/web.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $< -luv -lhttp_parser

build/helpers/%: tests/helpers/%.c
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $<

deps:
	@sh scripts/deps.sh

devnode: build/rel/libcore.a build/rel/cli/main.o
	$(CC) -o $@ build/rel/cli/main.o build/rel/libcore.a $(PKG_LIBS) -lm

build/rel/libcore.a: $(REL_OBJ)
	@mkdir -p $(@D)
	@rm -f $@ && ar rcs $@ $^

build/asan/libcore.a: $(ASAN_OBJ)
	@mkdir -p $(@D)
	@rm -f $@ && ar rcs $@ $^

build/rel/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASEFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC/asan $<"
	@$(CC) $(BASEFLAGS) $(SANFLAGS) -MMD -MP -c -o $@ $<

build/asan/tests/%: tests/unit/%.c build/asan/libcore.a
	@mkdir -p $(@D)
	@echo "  LD/asan $@"
	@$(CC) $(BASEFLAGS) $(SANFLAGS) -MMD -MP -o $@ $< build/asan/libcore.a $(PKG_LIBS) -lcmocka -lm

run: deps all
	./devnode up

# Unit tests run under ASan+UBSan; any sanitizer report or leak fails the run.
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do \
	  echo "== $$t"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $$t; \
	done

e2e: all
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e

bench: deps all
	sh bench/run

clean:
	rm -rf build devnode

-include $(REL_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(UNIT_BIN:=.d) build/rel/cli/main.d
