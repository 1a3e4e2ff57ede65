# devnode build. `make run` and `make test` are the two entry points (see README).
# Objects go to build/rel (the binary) and build/asan (unit tests under ASan+UBSan).

PKGS     := libuv yaml-0.1 libzmq msgpack jansson ncursesw zlib librabbitmq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC       ?= cc
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-format-truncation
CFLAGS   ?= -O2 -g
BASEFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -I. $(PKG_CFLAGS)
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Everything but the entry point goes into a static core library that the
# binary and the unit tests link against.
CORE_SRC := $(wildcard common/*.c proto/*.c config/*.c node/*.c sockets/*.c tail/*.c tui/*.c export/*.c) \
            $(filter-out cli/main.c,$(wildcard cli/*.c))
MAIN_SRC := cli/main.c
UNIT_SRC := $(wildcard tests/unit/test_*.c)

REL_OBJ  := $(CORE_SRC:%.c=build/rel/%.o)
ASAN_OBJ := $(CORE_SRC:%.c=build/asan/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

.PHONY: all deps run test unit e2e bench clean helpers layers examples conformance asan e2e-asan
all: devnode helpers examples

# Small programs the e2e tests and benches run as workers.
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=build/helpers/%)
LIBHELPER_BIN := $(patsubst tests/libhelpers/%.c,build/libhelpers/%,$(wildcard tests/libhelpers/*.c))
helpers: $(HELPER_BIN) build/examples/web $(LIBHELPER_BIN) build/conformance/c_adapter

# The plain HTTP worker of examples/web: shared-socket tests and benches run it.
build/examples/web: examples/web/web.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $< -luv -lhttp_parser

build/helpers/%: tests/helpers/%.c
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $<

# The ZooKeeper registry's test and bench program (issue 19): lib/zkregistry.c on libzookeeper_mt.
build/helpers/zkreg_probe: tests/helpers/zkreg_probe.c build/libdevnode.a
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $< build/libdevnode.a -lzookeeper_mt -ljansson -lpthread

deps:
	@sh scripts/deps.sh

# The CLI's request, inspect, subscribe and emit are libdevnode clients. libdevnode.a holds the
# same common/ and proto/ objects as libcore.a; the linker takes each from the first archive
# that resolves it, so nothing is defined twice.
devnode: build/rel/libcore.a build/libdevnode.a build/rel/cli/main.o
	$(CC) -o $@ build/rel/cli/main.o build/rel/libcore.a build/libdevnode.a $(PKG_LIBS) $(ZK_LIBS) -lm

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

# The node itself under ASan+UBSan (`make asan`): build/asan/devnode, linked from the unit tests'
# sanitized objects, beside and never instead of ./devnode. `make e2e-asan` runs e2e tests on it.
asan: build/asan/devnode
build/asan/devnode: build/asan/cli/main.o build/asan/libcore.a build/asan/libdevnode.a
	@echo "  LD/asan $@"
	@$(CC) $(SANFLAGS) -o $@ $^ $(PKG_LIBS) $(ZK_LIBS) -lm

# e2e tests on the sanitized node (tests/e2e/conftest.py: DEVNODE_BIN; a sanitizer report of any
# devnode process fails the test). E2E_ASAN is the subset; the symlink lets the node find the
# Python client beside its binary, as ./devnode does.
# About 2 minutes on the 2-core machine (201 tests; test_control.py would add one). Left out: the 100,000-line
# tail bursts (half of the time, and their 30 s waits time out under ASan on a loaded machine).
E2E_ASAN ?= $(addprefix tests/e2e/test_,bus_quiet.py config_errors.py config_schema.py envfiles.py reload.py \
              sockets.py cli_registry.py tail.py faults.py streams.py depends.py order.py procfile.py \
              service_logs.py reload_services.py tail_expiry.py control_stopped.py watch.py rpc_events.py)
# test_many_reloads_do_not_grow_the_node measures the node's RSS, which ASan's quarantine grows.
E2E_ASAN_SKIP ?= not test_follower_to_a_file_or_a_pipe_gets_every_line and not test_many_reloads_do_not_grow_the_node
e2e-asan: all build/asan/devnode
	@ln -sfn ../../clients build/asan/clients
	DEVNODE_BIN=build/asan/devnode ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider -k '$(E2E_ASAN_SKIP)' $(E2E_ASAN)

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
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e clients/python/tests

# One set of protocol scenarios run against libdevnode and the Python client alike, through an
# adapter each (tests/conformance/README.md: the checklist for a client in another language).
conformance: all
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/conformance

# The folders depend one way (common <- proto <- node, lib, tail, tui; cli on top): see the
# rule table in the script, which names every include that breaks it.
layers:
	@sh scripts/check_layers.sh
	@sh scripts/check_lib_stack.sh

test: deps
	$(MAKE) layers
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) e2e-asan
	$(MAKE) conformance
	$(MAKE) fuzz-smoke

bench: deps all
	sh bench/run

clean:
	rm -rf build devnode

-include $(REL_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(UNIT_BIN:=.d) build/rel/cli/main.d build/asan/cli/main.d

# ---- install (docs/install.md) -----------------------------------------------------------
# `make install PREFIX=~/.local` (default /usr/local; DESTDIR for packaging): the binary, the
# devnode(1) page and the bash/zsh/fish completions, all generated by the binary from its
# command table, and the Python client where `devnode up` looks for it, beside the binary.
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL_BIN  := $(DESTDIR)$(PREFIX)/bin
INSTALL_MAN  := $(DESTDIR)$(PREFIX)/share/man/man1
INSTALL_DATA := $(DESTDIR)$(PREFIX)/share/devnode
GENERATED_DOCS := build/devnode.1 build/completions/devnode.bash build/completions/_devnode \
                  build/completions/devnode.fish

.PHONY: install uninstall man
man: build/devnode.1

build/devnode.1: devnode
	@mkdir -p $(@D)
	./devnode man > $@.tmp && mv $@.tmp $@
build/completions/devnode.bash: devnode
	@mkdir -p $(@D)
	./devnode completion bash > $@.tmp && mv $@.tmp $@
build/completions/_devnode: devnode
	@mkdir -p $(@D)
	./devnode completion zsh > $@.tmp && mv $@.tmp $@
build/completions/devnode.fish: devnode
	@mkdir -p $(@D)
	./devnode completion fish > $@.tmp && mv $@.tmp $@

install: devnode $(GENERATED_DOCS)
	install -d $(INSTALL_BIN) $(INSTALL_MAN) $(INSTALL_DATA) \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 755 devnode $(INSTALL_BIN)/devnode
	install -m 644 build/devnode.1 $(INSTALL_MAN)/devnode.1
	install -m 644 build/completions/devnode.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/devnode
	install -m 644 build/completions/_devnode $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_devnode
	install -m 644 build/completions/devnode.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/devnode.fish
	@if [ -d clients/python/devnode ]; then \
	    rm -rf $(INSTALL_DATA)/python && install -d $(INSTALL_DATA)/python && \
	    for pkg in clients/python/*/; do \
	        [ -f "$$pkg/__init__.py" ] && cp -R "$$pkg" $(INSTALL_DATA)/python/ && \
	        echo "installed the Python package $$(basename $$pkg) in $(INSTALL_DATA)/python"; \
	    done; \
	    find $(INSTALL_DATA)/python -name __pycache__ -prune -exec rm -rf {} +; \
	else \
	    echo "no clients/python/devnode in this tree: the Python client is not installed"; \
	fi
	@echo "installed devnode in $(INSTALL_BIN) (man devnode; completions for bash, zsh, fish)"

uninstall:
	rm -f $(INSTALL_BIN)/devnode $(INSTALL_MAN)/devnode.1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/devnode \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_devnode \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/devnode.fish
	rm -rf $(INSTALL_DATA)

# ---- libdevnode and the example services ------------------------------------------------
# The client library services link: lib/*.c plus common/ and the proto/ wire code. Examples include
# <devnode.h> the way an outside service would, and link only what they use.
LIB_SRC      := $(wildcard lib/*.c)
LIB_OBJ      := $(LIB_SRC:%.c=build/rel/%.o) $(patsubst %.c,build/rel/%.o,$(wildcard common/*.c proto/*.c))
LIB_ASAN_OBJ := $(LIB_SRC:%.c=build/asan/%.o) $(patsubst %.c,build/asan/%.o,$(wildcard common/*.c proto/*.c))
# libzookeeper_mt: lib/remote.c opens a session only when DEVNODE_REGISTRY names one (issue 19).
ZK_LIBS      := -lzookeeper_mt -lpthread
LIB_LIBS     := $(shell pkg-config --libs libzmq msgpack jansson librabbitmq 2>/dev/null) $(ZK_LIBS)
EXAMPLE_LIBS := $(LIB_LIBS) $(shell pkg-config --libs libuv 2>/dev/null) -lhttp_parser -lm

EXAMPLES_BIN := build/examples/greeting build/examples/listen build/examples/demo_web \
                build/examples/pipeline_stage build/examples/pipeline_client build/examples/call \
                build/examples/bookshelf_shelf build/examples/bookshelf_last_read
# (build/examples/web, the plain HTTP worker of examples/web, has its own rule above.)

examples: $(EXAMPLES_BIN)

build/libdevnode.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	@rm -f $@ && ar rcs $@ $^

build/asan/libdevnode.a: $(LIB_ASAN_OBJ)
	@mkdir -p $(@D)
	@rm -f $@ && ar rcs $@ $^

# The HTTP services (demo_web, bookshelf_last_read) share examples/common: the HTTP server on
# the node's socket (httpd) and the libuv loop that runs libdevnode next to it (svcloop).
EXAMPLE_COMMON_OBJ := build/examples/common/httpd.o build/examples/common/svcloop.o

build/examples/common/%.o: examples/common/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(BASEFLAGS) -Ilib $(CFLAGS) -MMD -MP -c -o $@ $<

# Links the example's own .c (the first prerequisite) with the objects it lists and libdevnode.
EXAMPLE_LD = @mkdir -p $(@D) && echo "  LD      $@" && \
	$(CC) $(BASEFLAGS) -Ilib $(CFLAGS) -MMD -MP -o $@ $< $(filter %.o,$^) build/libdevnode.a $(EXAMPLE_LIBS)

build/examples/greeting: examples/greeting/greeting.c build/libdevnode.a
	$(EXAMPLE_LD)
build/examples/listen: examples/listen/listen.c build/libdevnode.a
	$(EXAMPLE_LD)
build/examples/demo_web: examples/demo_web/web.c $(EXAMPLE_COMMON_OBJ) build/libdevnode.a
	$(EXAMPLE_LD)
build/examples/pipeline_stage: examples/pipeline/stage.c build/libdevnode.a
	$(EXAMPLE_LD)
build/examples/pipeline_client: examples/pipeline/client.c build/libdevnode.a
	$(EXAMPLE_LD)
build/examples/call: examples/call/call.c build/libdevnode.a
	$(EXAMPLE_LD)
build/examples/bookshelf_shelf: examples/bookshelf/shelf.c build/libdevnode.a
	$(EXAMPLE_LD)
build/examples/bookshelf_last_read: examples/bookshelf/last_read.c $(EXAMPLE_COMMON_OBJ) build/libdevnode.a
	$(EXAMPLE_LD)
# Test programs that are libdevnode clients (LIBHELPER_BIN, the e2e tests of the library run them).
build/libhelpers/%: tests/libhelpers/%.c build/libdevnode.a
	$(EXAMPLE_LD)
# libdevnode's adapter of the conformance suite (tests/conformance/README.md).
build/conformance/c_adapter: tests/conformance/adapters/c_adapter.c build/libdevnode.a
	$(EXAMPLE_LD)
# The library's own unit test runs it under ASan+UBSan against the node's real handlers,
# in-process. Both archives hold common/*.o, the very same objects: the linker takes each
# from the first archive that defines what is missing, so none comes twice.
build/asan/tests/test_devnode: tests/unit/test_devnode.c build/asan/libdevnode.a build/asan/libcore.a
	@mkdir -p $(@D)
	@echo "  LD/asan $@"
	@$(CC) $(BASEFLAGS) -Ilib $(SANFLAGS) -MMD -MP -o $@ $< build/asan/libdevnode.a build/asan/libcore.a \
	    $(PKG_LIBS) $(ZK_LIBS) -lcmocka -lm

-include $(LIB_SRC:%.c=build/rel/%.d) $(LIB_SRC:%.c=build/asan/%.d) $(EXAMPLES_BIN:=.d) \
         $(EXAMPLE_COMMON_OBJ:.o=.d)

# ---- fuzzing (tests/fuzz) ---------------------------------------------------------------
# libFuzzer targets built with clang (ASan+UBSan), linking the project's own sources.
# `make fuzz` runs each target FUZZ_SECONDS on a copy of its seed corpus (build/fuzz/corpus),
# FUZZ_JOBS at a time; `make fuzz-smoke` (the last step of `make test`) replays every
# regression input and runs each target FUZZ_SMOKE_SECONDS. Crashes: build/fuzz/crashes/.
FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 300
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_JOBS          ?= 2
FUZZ_TARGETS := config framer logparse wire rpcwire handlers streamrec journal tailwire proto shellcmd sdquote envfile procfile zkurl
FUZZ_SRC     := $(wildcard common/*.c proto/*.c) $(wildcard config/*.c) node/framer.c node/control.c node/registry.c \
                node/bus.c node/loghub.c node/tailserver.c tail/tailconv.c export/sdquote.c
FUZZ_SRC     += node/peers.c
FUZZ_SRC     += node/parkedmsg.c
FUZZ_FLAGS   := -std=gnu11 -D_GNU_SOURCE -I. $(PKG_CFLAGS) -g -O1 -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wno-unused-parameter
FUZZ_OBJ     := $(FUZZ_SRC:%.c=build/fuzz/obj/%.o)
FUZZ_BIN     := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-deps
fuzz-deps:
	@sh tests/fuzz/deps.sh

fuzz-build: $(FUZZ_BIN)

build/fuzz/obj/%.o: %.c | fuzz-deps
	@mkdir -p $(@D)
	@echo "  CC/fuzz $<"
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

build/fuzz/libfuzzcore.a: $(FUZZ_OBJ)
	@rm -f $@ && ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libfuzzcore.a
	@echo "  LD/fuzz $@"
	@$(FUZZ_CC) $(FUZZ_FLAGS) -Wextra -Werror -fsanitize=fuzzer -MMD -MP -o $@ $< build/fuzz/libfuzzcore.a \
	    $(PKG_LIBS) -lm

fuzz: fuzz-build
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(FUZZ_JOBS) -I{} sh tests/fuzz/run.sh {} $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(FUZZ_JOBS) -I{} sh tests/fuzz/run.sh {} $(FUZZ_SMOKE_SECONDS)

-include $(FUZZ_OBJ:.o=.d) $(FUZZ_BIN:=.d)
