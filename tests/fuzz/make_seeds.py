#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) and their
dictionaries (tests/fuzz/<target>.dict): small, meaningful inputs in each harness's own input
layout (see the comment at the top of each tests/fuzz/fuzz_<target>.c). Deterministic; run it
from the repository root with /usr/bin/python3 (needs python3-msgpack) and commit the output.
It replaces the seed directories it writes, so a seed removed here disappears there."""

import os
import re
import shutil
import struct
import sys
import zlib

import msgpack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUZZ = os.path.join(ROOT, "tests", "fuzz")
CORPUS = os.path.join(FUZZ, "corpus")


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def write_corpus(target, seeds):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds:
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def write_dict(target, words):
    with open(os.path.join(FUZZ, target + ".dict"), "w") as f:
        f.write("# libFuzzer dictionary for fuzz_%s, written by make_seeds.py\n" % target)
        for w in words:
            if isinstance(w, str):
                w = w.encode()
            esc = "".join(chr(b) if 0x20 <= b < 0x7f and b not in (0x22, 0x5c) else "\\x%02x" % b for b in w)
            f.write('"%s"\n' % esc)


# ---- framing shared with fuzz_util.h -----------------------------------------------------

def enc_len(n):
    return bytes([n]) if n < 0xFF else b"\xff" + struct.pack("<H", n)


def frames(parts, routed):
    """[flags][len f1][f1]...[f(n-1)][fn = the rest], flags = (n - 1) | routed << 3."""
    out = bytes([(len(parts) - 1) | (8 if routed else 0)])
    for p in parts[:-1]:
        out += enc_len(len(p)) + p
    return out + parts[-1]


# ---- config ---------------------------------------------------------------------------------

def config_seeds():
    seeds = []
    for rel in (".lymph.yml", "examples/pipeline/.lymph.yml"):
        with open(os.path.join(ROOT, rel), "rb") as f:
            seeds.append(("repo-" + rel.replace("/", "-").lstrip("."), f.read()))
    docs = os.path.join(ROOT, "docs")
    for md in sorted(os.listdir(docs)):
        with open(os.path.join(docs, md)) as f:
            text = f.read()
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S)):
            seeds.append(("doc-%s-%d.yml" % (md[:-3], i), block))
    good = {
        "backends": "backends:\n  registry: zookeeper://zk1:2181,zk2/lymph\n  ip: 10.0.0.5\n"
                    "instances:\n  W: {command: a}\n",
        "full": "instances:\n  Web:\n    command: ./web --port $(env.FUZZ_PORT)\n    numprocesses: 2\n"
                "    sockets: [Web]\n    env: {A: 1, B: \"two\", C: $(env.FUZZ_NAME)}\n    cwd: services/web\n"
                "    restart: on-failure\n    stop_signal: SIGINT\n    stop_timeout: 500ms\n"
                "    ready: {log: 'listening on [0-9]+', timeout: 60s}\n"
                "  Greeting:\n    command: python -m greeting\n    ready: {tcp: '[::1]:8080'}\n"
                "  Listen:\n    command: listen\n    ready: {delay: 2s}\n    numprocesses: 0\n"
                "sockets:\n  Web: {port: 4080, host: 0.0.0.0}\n  Admin: {path: run/admin.sock}\n"
                "logs: {buffer_lines: 5000, file_max_mb: 8, keep_files: 2}\n"
                "streams:\n  book.#: {retain_events: 500}\n  order.*:\n",
        "list-sockets": "sockets:\n  - port: 0\n  - {name: Named, port: 9000}\n  - path: /tmp/x.sock\n"
                        "instances:\n  W: {command: x, sockets: [socket0, Named]}\n",
        "lymph-keys": "container: {debug: true}\ninterfaces: {Greeting: {}}\nregistry: {class: x}\n"
                      "event_system: {class: y}\nplugins: []\nlogging: {version: 1}\nname: demo\n"
                      "instances:\n  W:\n    command: lymph instance\n",
        "anchors": "debug: &b {command: run, numprocesses: 2}\ninstances:\n  A: *b\n  B: *b\n",
        "empty": "",
        "comment": "# nothing\n",
        "flow": "{instances: {W: {command: 'a b', env: {X: '$(env.FUZZ_EMPTY)'}}}}\n",
        "signals": "instances:\n  A: {command: a, stop_signal: 9}\n  B: {command: b, stop_signal: hup}\n"
                   "  C: {command: c, stop_signal: SIGUSR1, stop_timeout: 1.5}\n",
        "ready-notify": "instances:\n  A: {command: a, ready: notify}\n  B: {command: b, ready: {notify: true}}\n",
        "depends": "instances:\n  Web: {command: w, depends_on: [Api, Cache]}\n"
                   "  Api:\n    command: a\n    depends_on:\n      Db: {condition: ready, restart: true}\n"
                   "      Migrate: completed\n      Cache: service_started\n      Queue:\n"
                   "  Migrate: {command: m, restart: never, depends_on: [Db]}\n"
                   "  Db: {command: d, numprocesses: 2}\n  Cache: {command: c, disabled: true}\n"
                   "  Queue: {command: q, restart: on-failure, disabled: false}\n",
        "depends-env": "instances:\n  A: {command: a, depends_on: [$(env.FUZZ_NAME)]}\n  Greeting: {command: g}\n",
        "depends-layers": "instances:\n" + "".join(
            "  S%d: {command: s, depends_on: [%s]}\n" % (i, ", ".join("S%d" % (i + 1 + k) for k in range(3) if i + 1 + k < 30))
            for i in range(30)),
        "watch": "instances:\n  A: {command: a, watch: ['src/**/*.py', templates/, ./x], ignore: ['*.log', /gen/],"
                 " watch_debounce: 50ms}\n  B: {command: b, watch: '[a-z]?/**'}\n",
    }
    bad = {
        "err-dup-key": "instances:\n  W: {command: a}\n  W: {command: b}\n",
        "err-unknown-key": "instances:\n  W: {command: a, colour: red}\n",
        "err-no-command": "instances:\n  W: {numprocesses: 2}\n",
        "err-bad-name": "instances:\n  'W eb': {command: a}\n",
        "err-numprocesses": "instances:\n  W: {command: a, numprocesses: 1001}\n",
        "err-signal": "instances:\n  W: {command: a, stop_signal: NOPE}\n",
        "err-timeout": "instances:\n  W: {command: a, stop_timeout: 2h}\n",
        "err-regex": "instances:\n  W: {command: a, ready: {log: '(unclosed'}}\n",
        "err-undefined-env": "instances:\n  W: {command: $(env.FUZZ_UNSET)}\n",
        "err-undefined-var": "instances:\n  W: {command: $(var.db.host)}\n",
        "err-syntax": "instances:\n  W: [command: a\n",
        "err-tab": "instances:\n\tW: {command: a}\n",
        "err-two-docs": "instances: {}\n---\ninstances: {}\n",
        "err-port-and-path": "sockets:\n  S: {port: 1, path: /x}\n",
        "err-unknown-alias": "instances: *nope\n",
        "err-socket-ref": "instances:\n  W: {command: a, sockets: [Missing]}\n",
        "err-depends-cycle": "instances:\n  A: {command: a, depends_on: [B]}\n  B: {command: b, depends_on: {C: ready}}\n"
                             "  C: {command: c, depends_on: {A: {condition: started}}}\n",
        "err-depends-unknown": "instances:\n  A: {command: a, depends_on: [Nope]}\n",
        "err-depends-self": "instances:\n  A: {command: a, depends_on: {A: started}}\n",
        "err-depends-condition": "instances:\n  A: {command: a, depends_on: {B: healthy}}\n  B: {command: b}\n",
        "err-depends-completed": "instances:\n  A: {command: a, depends_on: {B: completed}}\n  B: {command: b}\n",
        "err-depends-twice": "instances:\n  A: {command: a, depends_on: [B, B]}\n  B: {command: b}\n",
        "err-disabled": "instances:\n  A: {command: a, disabled: maybe}\n",
        # Small on purpose (1000 nodes): the fuzzer adds levels; regressions/ holds the big one.
        "laughs": "container:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                  "  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n  c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n",
        "err-deep": "a: " + "[" * 80 + "]" * 80 + "\n",
        "err-top-list": "- instances\n",
        "err-long-path": "sockets:\n  S: {path: /" + "p" * 200 + "}\n",
        "err-watch": "instances:\n  W: {command: a, watch: [src/, ../up], ignore: /}\n",
        "err-backends-url": "backends: {registry: 'zookeeper://h:0,/x'}\n",
        "err-backends-events": "backends: {events: 'amqp://g:g@h/v'}\n",
        "err-backends-ip": "backends: {ip: 0.0.0.0}\n",
    }
    seeds += [(k + ".yml", v) for k, v in good.items()] + [(k + ".yml", v) for k, v in bad.items()]
    # With a vars file: config, NUL, vars.
    seeds += [
        ("vars-ok", "instances:\n  W: {command: 'run --db=$(var.db.host):$(var.db.port)'}\n\0"
                    "db: {host: localhost, port: 5432}\n"),
        ("vars-not-scalar", "instances:\n  W: {command: $(var.db)}\n\0db: {host: h}\n"),
        ("vars-not-map", "instances:\n  W: {command: $(var.a)}\n\0- a\n"),
        ("vars-syntax", "instances:\n  W: {command: $(var.a)}\n\0a: 1\nb: [2\n"),
        ("vars-dash", "instances:\n  W: {command: $(var.my-app.port)}\n\0my-app: {port: 8080}\n"),
    ]
    write_corpus("config", seeds)
    write_dict("config", [
        "instances", "command", "numprocesses", "env", "cwd", "restart", "always", "on-failure", "never",
        "stop_signal", "stop_timeout", "ready", "notify", "log", "tcp", "delay", "timeout", "sockets", "port",
        "host", "path", "name", "logs", "buffer_lines", "file_max_mb", "keep_files", "streams", "retain_events",
        "depends_on", "condition", "started", "completed", "service_healthy", "service_started",
        "service_completed_successfully", "disabled", "true", "false",
        "watch", "ignore", "watch_debounce", "**", "../",
        "backends", "registry", "events", "ip", "zookeeper://", "amqp://", "127.0.0.1", ":2181", "/lymph",
        "$(env.FUZZ_NAME)", "$(env.FUZZ_PORT)", "$(env.FUZZ_EMPTY)", "$(env.FUZZ_REF)", "$(env.FUZZ_UNSET)",
        "$(var.", "$(socket.", ")", "&a ", "*a", "<<: ", "---", "...", "!!str ", "~", "null", "500ms", "2s", "1m",
        "SIGTERM", "KILL", ": ", "\n  ", "\n    ", "- ", "{", "}", "[", "]", "'", "\"", "\0",
    ])


# ---- framer -----------------------------------------------------------------------------------

def framer_seeds():
    def seed(data, split=255, repeat=0, chunk_log2=17, rng=1):
        return struct.pack("<I", rng) + bytes([chunk_log2, repeat, split]) + data

    seeds = [
        ("lines", seed(b"hello\nworld\r\nno newline")),
        ("crlf-chunks", seed(b"a\r\nb\r\n\r\n\r\r\nc\r", chunk_log2=1, rng=7)),
        ("empty-lines", seed(b"\n\n\n\r\n", chunk_log2=0)),
        ("binary", seed(bytes(range(256)), chunk_log2=3, rng=99)),
        # "a" as long as the stream allows (3 pieces), then a CRLF and one more line.
        ("long-line-crlf", seed(b"a\r\nnext\n", split=32, repeat=255, chunk_log2=12, rng=3)),
        # "x" x 65536 then "y", no newline: flushed as a split piece and an unterminated one.
        ("long-unterminated", seed(b"xy", split=128, repeat=254, chunk_log2=9, rng=5)),
        ("long-cr-split", seed(b"0123456789abcdef\r", split=240, repeat=253, chunk_log2=16, rng=11)),
    ]
    # 16-byte prefix x 4096 = 65536 bytes, then "\r\n" or "\rX\n": the CR-at-the-limit cases.
    pre = b"0123456789ABCDEF"
    for name, tail in (("exact-limit-crlf", b"\r\n"), ("limit-cr-text", b"\rX\n"), ("limit-cr-eof", b"\r")):
        body = pre + tail
        seeds.append((name, seed(body, split=255 * len(pre) // len(body) + 1, repeat=250, chunk_log2=13, rng=17)))
    write_corpus("framer", seeds)


# ---- logparse ----------------------------------------------------------------------------------

def logparse_seeds():
    lines = {
        "logfmt": "time=2024-01-01 level=info trace_id=4bf92f3577b34da6a3ce929d0e0e4736 msg=hello",
        "logfmt-quoted": 'level=warn trace_id="abc-123_DEF" msg="x"',
        "json": '{"level": "error", "trace_id": "0af7651916cd43dd8448eb211c80319c", "msg": "boom"}',
        "json-spaces": '{"trace_id"  :   "t1", "severity":"CRITICAL"}',
        "colon": "2024-01-01 12:00:00 [INFO] greeting: trace_id: 5f3c handled",
        "lymph": "[WARNING] 2024 lymph.core trace_id=None call failed",
        "dash": "127.0.0.1 - - [01/Jan] \"GET /\" 200 trace_id=- ",
        "xtrace": "xtrace_id=nope trace_ids=nope trace_id_x=nope",
        "too-long": "trace_id=" + "a" * 65,
        "max-len": "trace_id=" + "b" * 64,
        "quoted-unclosed": 'trace_id="abc',
        "plain-error": "ERROR: disk full",
        "plain-debug": "DEBUG something",
        "fatal": "FATAL crash trace_id=zz9",
        "levelname": '{"levelname": "Warning", "trace_id": "w"}',
        "lvl": "lvl=err trace_id:\t\"tab\"",
        "ansi": "\x1b[31mERROR\x1b[0m trace_id=red \x1b]0;title\x07 end\x7f",
        "utf8": "caf\u00e9 \u2603 trace_id=snow level=info",
        "invalid-utf8": b"bad \xff\xfe \xc3( trace_id=b1",
        "nul": b"a\0b trace_id=n\0ul",
        "empty": "",
        "level-word": "warning",
    }
    write_corpus("logparse", [(k, v) for k, v in lines.items()])
    write_dict("logparse", ["trace_id", "trace_id=", 'trace_id="', '"trace_id": "', "trace_id: ", "None",
                            "level=", '"level": "', "severity", "levelname", "lvl", "[INFO]", "[WARNING]", "ERROR:",
                            " CRITICAL ", "\x1b[", "\x1b]", "\x07", "\x1b\\", "\r", "\t"])


# ---- node protocol messages ---------------------------------------------------------------------

REQUESTS = [
    ("status", {"id": 1}),
    ("ping", {"id": "p"}),
    ("restart", {"id": 2, "target": "Greeting.1"}),
    ("scale", {"id": 3, "service": "Listen", "count": 6}),
    ("stop", {"id": 4, "force": True}),
    ("register", {"id": 5, "service": "Greeting", "instance": 0, "pid": 1234,
                  "endpoint": "ipc:///tmp/rpc/Greeting.0.1234.sock",
                  "methods": [{"name": "greet", "params": ["name"], "help": "Returns a greeting"}]}),
    ("heartbeat", {"id": 6, "pid": 1234}),
    ("unregister", {"id": 7, "pid": 1234}),
    ("discover", {"id": 8, "service": None}),
    ("emit", {"id": 9, "type": "greeted", "body": {"name": "joe"}, "headers": {"trace_id": "t1"},
              "source": "Greeting", "delay_ms": 0}),
    ("subscribe", {"id": 10, "subscription": "s1", "patterns": ["greeted", "order.#"], "group": "Listen.on_greeted",
                   "broadcast": False, "pid": 99, "prefetch": 64}),
    ("ack", {"delivery": 1}),
    ("nack", {"delivery": 2}),
    ("unsubscribe", {"id": 11, "subscription": "s1"}),
    ("bus_status", {"id": 12}),
    ("tail", {"id": 13, "backlog": 10, "follow": True, "services": ["Greeting", "Listen.2"], "trace": None,
              "level": "info", "grep": "hel+o"}),
    ("tail_renew", {"id": 13, "received": 1}),
    ("untail", {"id": 13}),
    ("traces", {"id": 14, "limit": 5}),
]

NODE_KEYS = ["id", "target", "service", "count", "force", "type", "patterns", "subscription", "delivery", "pid",
             "methods", "endpoint", "instance", "group", "broadcast", "prefetch", "stream", "from", "headers",
             "body", "source", "delay_ms", "backlog", "follow", "services", "trace", "level", "grep", "limit",
             "received", "name", "params", "help", "trace_id", "beginning", "now", "resume", "events", "deliveries", "batch"]


def msgpack_words(keys):
    words = []
    for k in keys:
        words.append(pack(k))
    words += [b"\xc0", b"\xc2", b"\xc3", b"\x80", b"\x90", b"\xa0", b"\xdc\x00\x01", b"\xde\x00\x01",
              b"\xdd\x00\x00\x00\x01", b"\xdf\x00\x00\x00\x01", b"\xcf", b"\xd3", b"\xcb", b"\xc4\x01", b"\xd9\x01",
              b"\xc7\x01\x01", b"\xd4\x01"]
    return words


def wire_seeds():
    seeds = []
    for i, (t, body) in enumerate(REQUESTS):
        seeds.append(("%02d-%s-routed" % (i, t), frames([b"1", t.encode(), pack(body)], True)))
    seeds += [
        ("unrouted-reply", frames([b"1", b"ok", pack({"id": 1, "identity": "0" * 32})], False)),
        ("bad-version", frames([b"2", b"ping", pack({"id": 1})], True)),
        ("type-space", frames([b"1", b"pi ng", pack({"id": 1})], True)),
        ("type-long", frames([b"1", b"t" * 32, pack({"id": 1})], True)),
        ("extra-frame", frames([b"1", b"ping", pack({"id": 1}), b"x"], True)),
        ("no-body", frames([b"1", b"ping"], True)),
        ("body-array", frames([b"1", b"ping", pack([1, 2])], True)),
        ("body-trailing", frames([b"1", b"ping", pack({"id": 1}) + b"\xc0"], True)),
        ("nested", frames([b"1", b"x", pack({"a": [[[[{"b": [1.5, -3, 2**64 - 1, -2**63, b"\xff"]}]]]]})], True)),
        ("ext", frames([b"1", b"x", b"\x81\xa1e\xd4\x01\x02"], True)),
    ]
    write_corpus("wire", seeds)
    write_dict("wire", msgpack_words(NODE_KEYS) + [b"\x01\x31", b"\x08", b"\x0a"])


def rpcwire_seeds():
    h = pack({"trace_id": "4bf92f3577b34da6", "version": 1})
    seeds = [
        ("req-routed", frames([b"0123456789abcdef", b"REQ", b"Greeting.greet", h, pack({"name": "joe"})], True)),
        ("rep", frames([b"a1", b"REP", b"0123456789abcdef", pack({}), pack("Hi, joe!")], False)),
        ("error", frames([b"a2", b"ERROR", b"x", h, pack({"type": "ValueError", "message": "bad"})], False)),
        ("nack", frames([b"a3", b"NACK", b"x", pack({}), pack({"type": "UnknownMethod", "message": "no"})], True)),
        ("ack", frames([b"a4", b"ACK", b"x", pack({}), pack(None)], False)),
        ("ping", frames([b"id", b"REQ", b"lymph.ping", pack({}), pack({"payload": [1, 2, 3]})], True)),
        ("bad-type", frames([b"id", b"POST", b"x", pack({}), pack(None)], False)),
        ("extra", frames([b"id", b"REQ", b"x", pack({}), pack(None), b"more"], False)),
        ("short", frames([b"id", b"REQ", b"x"], False)),
        ("headers-list", frames([b"id", b"REQ", b"x", pack([1]), pack(None)], False)),
        ("long-trace", frames([b"id", b"REQ", b"x", pack({"trace_id": "t" * 70}), pack(None)], True)),
    ]
    write_corpus("rpcwire", seeds)
    write_dict("rpcwire", [b"REQ", b"REP", b"ACK", b"NACK", b"ERROR", pack("trace_id"), pack("version")] +
               msgpack_words([]))


# ---- handlers ------------------------------------------------------------------------------------

HANDLER_TYPES = ["register", "unregister", "discover", "emit", "subscribe", "unsubscribe", "ack", "nack",
                 "bus_status", "tail", "tail_renew", "untail", "traces", "heartbeat", "status", "ping"]
RAW1 = len(HANDLER_TYPES)
LOG = RAW1 + 4
EXIT = RAW1 + 5
SLEEP = RAW1 + 6


def op(type_, body, second=False):
    return bytes([HANDLER_TYPES.index(type_) | (0x80 if second else 0)]) + enc_len(len(body)) + body


def op_log(text, second=False):
    return bytes([LOG | (0x80 if second else 0)]) + enc_len(len(text)) + text


def op_raw(parts, second=False):
    out = bytes([RAW1 + len(parts) - 1 | (0x80 if second else 0)])
    for p in parts:
        out += enc_len(len(p)) + p
    return out


def handlers_seeds():
    reg = pack(dict(REQUESTS[5][1]))
    reg2 = lambda pid, inst: pack(dict(REQUESTS[5][1], pid=pid, instance=inst))
    sub = lambda s, pats, group=None, **kw: pack(dict({"id": 1, "subscription": s, "patterns": pats,
                                                      "group": group, "pid": 0}, **kw))
    emit = lambda t, **kw: pack(dict({"id": 2, "type": t, "body": {"n": 1}, "headers": {"trace_id": "t1"}}, **kw))
    seeds = [
        ("registry", op("register", reg) + op("discover", pack({"id": 1, "service": "Greeting"})) +
         op("discover", pack({"id": 2})) + op("register", reg, True) + op("unregister", pack({"id": 3, "pid": 1234}))),
        ("bus-group", op("subscribe", sub("s1", ["greeted"], "Listen.on")) +
         op("subscribe", sub("s1", ["greeted"], "Listen.on"), True) + op("emit", emit("greeted")) +
         op("emit", emit("greeted")) + op("ack", pack({"delivery": 1})) + op("nack", pack({"delivery": 2}), True) +
         op("bus_status", pack({"id": 9})) + op("unsubscribe", pack({"id": 4, "subscription": "s1"}), True)),
        ("bus-broadcast", op("subscribe", sub("b", ["order.#"], None, broadcast=True, prefetch=1)) +
         op("emit", emit("order.created")) + op("emit", emit("order.paid")) + op("ack", pack({"delivery": 1})) +
         op("unsubscribe", pack({"id": 5, "subscription": "b"}))),
        ("bus-delay", op("subscribe", sub("d", ["#"], "G")) + op("emit", emit("late", delay_ms=1)) +
         op("bus_status", pack({"id": 1}))),
        ("stream", op("emit", emit("book.added")) + op("emit", emit("book.sold")) +
         op("subscribe", sub("v", ["book.#"], "View", stream="book.#", **{"from": "beginning"})) +
         op("ack", pack({"delivery": 1})) + op("ack", pack({"delivery": 2})) + op("emit", emit("book.added")) +
         op("subscribe", sub("w", ["book.sold"], None, stream="book.#", **{"from": 1}), True) +
         op("bus_status", pack({"id": 2}))),
        ("stream-resume", op("subscribe", sub("v", ["book.#"], "View", stream="book.#", **{"from": "resume"})) +
         op("emit", emit("book.x")) + op("unsubscribe", pack({"id": 1, "subscription": "v"})) +
         op("subscribe", sub("v", ["book.#"], "View", stream="book.#", **{"from": "now"}))),
        ("bus-batch", op("subscribe", sub("s1", ["a.#"], "G", prefetch=5, batch=3)) +
         op("subscribe", sub("s1", ["a.#"], "G", batch=1000), True) +
         op("emit", pack({"id": 3, "source": "b", "events": [{"type": "a.b", "body": i} for i in range(8)]})) +
         op("ack", pack({"deliveries": [1, 2, 3]})) + op("nack", pack({"deliveries": [4, 5, 4, 0]}), True) +
         op("emit", pack({"id": 4, "events": [{"type": "a.c", "delay_ms": 1}, {"type": "a.d"}]})) + bytes([SLEEP]) +
         op("unsubscribe", pack({"id": 5, "subscription": "s1"})) + op("bus_status", pack({"id": 6}))),
        ("bus-quiet", op("subscribe", sub("q", ["a.#"], "G", prefetch=4, batch=10)) +
         op("emit", pack({"id": 7, "source": "q", "quiet": True, "events": [
             {"type": "a.b", "body": 1}, {"type": "a.*"}, {"type": "a.c", "headers": [1]},
             {"type": "book.added", "body": 2}, {"type": "a.d", "delay_ms": 1}]})) +
         op("emit", emit("a.e", quiet=True)) + op("emit", pack({"id": 8, "type": 5, "quiet": True})) +
         op("emit", emit("a.f"), True) + op("ack", pack({"deliveries": [1, 2]})) + bytes([SLEEP]) +
         op("bus_status", pack({"id": 9}))),
        ("tail", op_log(b"[INFO] trace_id=abc hello") + op_log(b"ERROR trace_id=abc failed", True) +
         op("tail", pack({"id": 1, "backlog": 10, "follow": True, "services": ["Greeting"]})) +
         op_log(b"more") + op("tail_renew", pack({"id": 1, "received": 1})) +
         op("traces", pack({"id": 2, "limit": 10})) + op("untail", pack({"id": 1}))),
        ("tail-trace", op_log(b"trace_id=t1 a") + op_log(b"trace_id=t1 b", True) +
         op("tail", pack({"id": 7, "backlog": 5, "follow": False, "trace": "t1", "level": "debug", "grep": "a|b"}))),
        ("registry-exit", op("register", reg2(7, 1)) + op("register", reg2(8, 0), True) +
         op("register", reg2(9, 0)) + op("discover", pack({"id": 1})) + bytes([EXIT, 8]) +
         op("discover", pack({"id": 2, "service": "Greeting"}))),
        ("bus-exit-delay", op("subscribe", sub("s", ["a.#"], "G", pid=5)) +
         op("subscribe", sub("t", ["a.#"], "G", pid=6), True) + op("emit", emit("a.b")) + op("emit", emit("a.c")) +
         bytes([EXIT, 5]) + op("emit", emit("a.d", delay_ms=1)) + bytes([SLEEP]) + op("bus_status", pack({"id": 3}))),
        ("tail-evict", op("tail", pack({"id": 1, "backlog": 0, "follow": True})) +
         b"".join(op_log(b"line %d trace_id=t%d" % (i, i % 3)) for i in range(20)) +
         op("traces", pack({"id": 2}))),
        ("unknown-and-raw", op("status", pack({"id": 1})) + op("heartbeat", pack({"id": 2, "pid": 5})) +
         op_raw([b"1"]) + op_raw([b"1", b"ping"]) + op_raw([b"2", b"ping", pack({"id": 1})]) +
         op_raw([b"1", b"ping", pack({"id": 1}), b"x"])),
    ]
    write_corpus("handlers", seeds)
    write_dict("handlers", msgpack_words(NODE_KEYS + ["greeted", "book.#", "book.added", "order.#", "Listen.on",
                                                      "#", "*"]) + [bytes([i]) for i in range(RAW1, SLEEP + 1)])


# ---- retained streams ----------------------------------------------------------------------------

def record(type_, source, headers, body, wall_ns):
    return pack([type_, source, headers, body, wall_ns])


def streamrec_seeds():
    seeds = [
        ("event", record("book.added", "Shop", {"trace_id": "t1"}, {"title": "Dune"}, 1700000000000000000)),
        ("negative-time", record("x", "cli", {}, None, -5)),
        ("binary-body", record("a.b", "s", {"k": b"\x00\xff"}, b"\x01\x02", 0)),
        ("four-fields", pack(["x", "s", {}, None])),
        ("headers-list", pack(["x", "s", [], None, 1])),
        ("type-int", pack([1, "s", {}, None, 1])),
        ("pattern-like", b"book.#/..%\x00\xffabc"),
    ]
    write_corpus("streamrec", seeds)
    write_dict("streamrec", msgpack_words(["trace_id"]) + [b"\x95"])


def journal_record(offset, payload):
    crc = zlib.crc32(payload, zlib.crc32(struct.pack("<Q", offset))) & 0xFFFFFFFF
    return struct.pack("<IIQ", len(payload), crc, offset) + payload


def journal_seeds():
    def seed(flags, split, first, gap, retain, segment):
        return bytes([flags, split, first, gap, retain]) + segment

    recs = lambda first, n: b"".join(journal_record(first + i, record("book.added", "s", {}, i, i)) for i in range(n))
    seeds = [
        ("whole", seed(0x00, 0, 0, 0, 15, recs(0, 3))),
        ("whole-appends", seed(0x60 | 0x04, 0, 0, 0, 2, recs(0, 4))),
        ("torn-tail", seed(0x00, 0, 0, 0, 15, recs(0, 2) + journal_record(2, b"payload")[:-3])),
        ("bad-crc", seed(0x00, 0, 0, 0, 15, recs(0, 1) + b"\x03\x00\x00\x00\x00\x00\x00\x00\x01" + b"\x00" * 7
                         + b"abc" + recs(2, 1))),
        ("repair-mode", seed(0x02 | 0x40, 0, 3, 0, 3, b"\x02\x00\x00\x00" + b"\x00" * 12 + b"hi" + b"\x00" * 16)),
        ("two-segments", seed(0x01, 128, 0, 3, 15, recs(0, 3) + recs(3, 3))),
        ("two-segments-gap", seed(0x01, 128, 0, 5, 15, recs(0, 3) + recs(5, 3))),
        ("two-segments-repair", seed(0x03 | 0xe0, 100, 1, 2, 1, recs(1, 2) + recs(3, 2))),
        ("empty", seed(0x80, 0, 0, 0, 0, b"")),
        ("empty-record", seed(0x02 | 0x20, 0, 0, 0, 5, journal_record(0, b"") + journal_record(1, b"x"))),
    ]
    write_corpus("journal", seeds)


def tailwire_seeds():
    line = {"seq": 1, "wall_ns": 1700000000000000000, "service": "Greeting", "instance": 1, "pid": 42,
            "stream": "stdout", "level": "info", "trace_id": "abc", "text": "hello", "split": False,
            "unterminated": False}
    seeds = [
        ("request", pack({"id": 1, "backlog": 10, "follow": True, "services": ["Greeting", "Listen.3"],
                          "trace": "abc", "level": "warning", "grep": "^he(l+)o$"})),
        ("request-nil", pack({"id": 2, "backlog": None, "follow": None, "services": None, "trace": None,
                              "level": None, "grep": None})),
        ("request-bad-grep", pack({"id": 3, "grep": "(a"})),
        ("request-bad-service", pack({"id": 4, "services": ["Greeting.x"]})),
        ("request-many", pack({"id": 5, "services": ["S%d" % i for i in range(70)]})),
        ("line", pack(line)),
        ("line-node", pack(dict(line, stream="node", level=None, trace_id=None, instance=-1, split=True,
                                 unterminated=True))),
        ("line-bad-utf8", msgpack.packb(dict(line, text=b"\xff\xfe ok\xed\xa0\x80"), use_bin_type=False)),
        ("line-missing", pack({k: v for k, v in line.items() if k != "pid"})),
        ("line-and-request", pack(dict(line, backlog=3, follow=False, services=["Greeting"], grep="hel"))),
        # What the node answers, for the client's conversation (tail/tailconv.c).
        ("lines", pack({"id": 1, "lines": [dict(line, seq=5), dict(line, seq=9), dict(line, seq=7)],
                        "skipped": 3, "skipped_seqs": [2, 4]})),
        ("lines-skipped-back", pack({"id": 1, "lines": [dict(line, seq=3)], "skipped": 1,
                                     "skipped_seqs": [1, 2]})),
        ("end", pack({"id": 7, "truncated": True, "skipped": 2, "skipped_seqs": [10, 12]})),
        ("error", pack({"id": 2, "message": "tail_renew: unknown subscription"})),
    ]
    write_corpus("tailwire", seeds)
    write_dict("tailwire", msgpack_words(["seq", "wall_ns", "service", "instance", "pid", "stream", "level",
                                          "trace_id", "text", "split", "unterminated", "backlog", "follow",
                                          "services", "trace", "grep", "stdout", "stderr", "node", "debug",
                                          "info", "warning", "error", "critical", "id", "lines", "skipped",
                                          "skipped_seqs", "truncated", "message"]))


def proto_seeds():
    """fuzz_proto: [len][type frame] + the body, one seed (at least) per message type."""
    def msg(type_, body):
        t = type_.encode()
        return enc_len(len(t)) + t + pack(body)

    line = {"seq": 1, "wall_ns": 1700000000000000000, "service": "Greeting", "instance": 1, "pid": 42,
            "stream": "stdout", "level": "info", "trace_id": "abc", "text": "hello", "split": False,
            "unterminated": False}
    inst = {"index": 0, "state": "running", "pid": 7, "restarts": 0, "uptime_ms": 5, "cpu_percent": 0.5,
            "rss_kib": 10, "last_exit": {"code": None, "signal": "TERM"}, "failure": None, "command": "x",
            "ready": True, "port": 8080, "waiting": "waiting for Db to be ready"}
    status = {"id": 1, "node": {"pid": 1, "endpoint": "ipc:///e", "config": "/c", "run_dir": "/r",
                                "uptime_ms": 1, "cpu_percent": 0.0, "rss_kib": 1, "stopping": False,
                                "malformed_messages": 0,
                                "sockets": [{"name": "web", "address": "127.0.0.1:80", "port": 80, "waiting": 0,
                                             "warning": None}]},
              "services": [{"name": "Web", "desired": 1, "running": 1, "sockets": ["web"], "instances": [inst]}]}
    method = {"name": "greet", "params": ["name"], "help": "Says hello"}
    event = {"type": "order.created", "body": {"n": 1}, "headers": {"trace_id": "t"}, "source": "Shop",
             "delay_ms": 0}
    seeds = [
        ("status", msg("status", {"id": 1})),
        ("status-reply", msg("status", status)),
        ("restart", msg("restart", {"id": 1, "target": "Web.1", "wait": True})),
        ("restart-service", msg("restart", {"id": 1, "target": "my.svc"})),
        ("scale", msg("scale", {"id": 1, "service": "Web", "count": 3, "wait": True})),
        ("scale-bad", msg("scale", {"id": 1, "service": "Web", "count": 10001})),
        ("stop", msg("stop", {"id": 1, "force": 1})),
        ("start-service", msg("start_service", {"id": 1, "service": "Api"})),
        ("stop-service", msg("stop_service", {"id": 1, "service": "Api", "force": True})),
        ("stop-service-bad", msg("stop_service", {"id": 1, "service": ""})),
        ("ok-service", msg("ok", {"id": 1, "services": "Db, Api", "instances": 2})),
        ("ping", msg("ping", {"id": 1})),
        ("reload", msg("reload", {"id": 1})),
        ("reload-reply", msg("ok", {"id": 1, "changes": ["Web: rolled (command changed)", "Db: scaled 1\u21922",
                                                         "2 services unchanged", 7]})),
        ("ok", msg("ok", {"id": 1, "instances": 2, "count": 2, "ready": 2, "stopped": 0, "elapsed_ms": 9,
                          "pid": 4, "identity": "ab", "offset": 3})),
        ("started", msg("started", {"id": 1, "count": 2, "instances": 1, "timeout_ms": 31000})),
        ("error", msg("error", {"id": 1, "message": "no service named 'X'"})),
        ("register", msg("register", {"id": 1, "service": "Greeting", "instance": 0, "pid": 9,
                                      "endpoint": "ipc:///g", "methods": [method]})),
        ("register-bad", msg("register", {"id": 1, "service": "G", "pid": 9, "endpoint": "e",
                                          "methods": [{"name": "x", "params": [1]}]})),
        ("heartbeat", msg("heartbeat", {"id": 1, "pid": 9})),
        ("unregister", msg("unregister", {"id": 1, "pid": 9})),
        ("discover", msg("discover", {"id": 1, "service": "Greeting"})),
        ("services", msg("services", {"id": 1, "services": [{"name": "Greeting", "instances": [
            {"identity": "ab", "instance": 0, "pid": 9, "endpoint": "ipc:///g", "registered_ms": 5,
             "methods": [method]}]}]})),
        ("emit", msg("emit", dict(event, id=1))),
        ("emit-batch", msg("emit", {"id": 1, "source": "Shop", "events": [event, dict(event, type="a.b")]})),
        ("emit-bad", msg("emit", {"id": 1, "type": "a.*", "headers": 3})),
        ("subscribe", msg("subscribe", {"id": 1, "subscription": "s1", "patterns": ["order.#"],
                                        "group": "Shop.on_order", "broadcast": False, "pid": 9, "prefetch": 64,
                                        "batch": 32})),
        ("subscribe-stream", msg("subscribe", {"id": 1, "subscription": "s1", "patterns": ["book.*"],
                                               "group": None, "broadcast": True, "pid": 9, "prefetch": 8,
                                               "stream": "book.#", "from": "beginning"})),
        ("subscribe-offset", msg("subscribe", {"id": 1, "subscription": "s2", "patterns": ["#"],
                                               "group": "G", "stream": "book.#", "from": 12})),
        ("unsubscribe", msg("unsubscribe", {"id": 1, "subscription": "s1"})),
        ("event", msg("event", {"subscription": "s1", "offset": None, "delivery": 17, "type": "a",
                                "headers": {}, "body": None, "source": "S", "redelivered": False})),
        ("events", msg("events", {"subscription": "s1", "events": [{"delivery": 1}, {"delivery": 2}]})),
        ("ack", msg("ack", {"delivery": 17})),
        ("nack", msg("nack", {"deliveries": [17, 18]})),
        ("bus-status", msg("bus_status", {"id": 1, "streams": [{"pattern": "book.#", "first_offset": 0,
                                                                "next_offset": 4}],
                                          "groups": [{"name": "View.on_book", "stream": "book.#",
                                                      "committed_offset": 3}]})),
        ("tail", msg("tail", {"id": 1, "backlog": 10, "follow": True, "services": ["Greeting", "Listen.3"],
                              "trace": "abc", "level": "warning", "grep": "^he(l+)o$"})),
        ("tail-nil", msg("tail", {"id": 2, "backlog": None, "follow": None, "services": None, "trace": None,
                                  "level": None, "grep": None})),
        ("tail-bad-grep", msg("tail", {"id": 3, "grep": "(a"})),
        ("tail-many", msg("tail", {"id": 5, "services": ["S%d" % i for i in range(70)]})),
        ("lines", msg("lines", {"id": 1, "lines": [line, dict(line, stream="node", level=None, trace_id=None,
                                                              instance=-1, split=True, unterminated=True)],
                                "skipped": 3, "skipped_seqs": [5, 9]})),
        ("lines-bad-utf8", enc_len(5) + b"lines" + msgpack.packb(
            {"id": 1, "lines": [dict(line, text=b"\xff\xfe ok\xed\xa0\x80")], "skipped": 0},
            use_bin_type=False)),
        ("end", msg("end", {"id": 1, "truncated": True, "skipped": 0})),
        ("tail-renew", msg("tail_renew", {"id": 1, "received": 4})),
        ("untail", msg("untail", {"id": 1})),
        ("traces", msg("traces", {"id": 1, "limit": 50})),
        ("traces-reply", msg("traces", {"id": 1, "traces": [{"trace_id": "abc", "first_ns": 1, "last_ns": 2,
                                                             "lines": 3, "error": True,
                                                             "services": ["Web", "Db"]}]})),
        ("attach", msg("attach", {"id": 1, "target": "Web.1", "pid": 4242, "tty": "/dev/pts/3", "rows": 40,
                                  "cols": 120})),
        ("attach-service", msg("attach", {"id": 1, "target": "my.svc", "pid": 1, "tty": "", "rows": 0,
                                          "cols": 0})),
        ("attach-reply", msg("attach", {"id": 1, "pid": 7, "mode": "pty", "reason": "busy", "target": "x.70000"})),
        ("attach-input", msg("attach_input", {"data": b"p x\r\x03\x1d\x00\xff"})),
        ("attach-input-str", enc_len(12) + b"attach_input" + msgpack.packb({"data": "ls\n"}, use_bin_type=False)),
        ("attach-output", msg("attach_output", {"data": b">>> " * 100})),
        ("attach-resize", msg("attach_resize", {"rows": 30, "cols": 100})),
        ("attach-resize-bad", msg("attach_resize", {"rows": 0, "cols": 70000})),
        ("attach-end", msg("attach_end", {"reason": "exited", "message": "Web.1 (pid 9) exited with status 0"})),
        ("detach", msg("detach", {"id": 2})),
    ]
    write_corpus("proto", seeds)
    write_dict("proto", msgpack_words(["data", "tty", "rows", "cols", "mode", "reason", "attach", "attach_input",
                                       "attach_output", "attach_resize", "attach_end", "detach", "id", "changes", "target", "wait", "service", "count", "force", "message", "instances",
                                       "timeout_ms", "ready", "stopped", "elapsed_ms", "node", "services",
                                       "sockets", "index", "state", "last_exit", "signal", "port", "instance",
                                       "pid", "endpoint", "methods", "params", "help", "identity", "type", "body",
                                       "headers", "source", "delay_ms", "events", "subscription", "patterns",
                                       "group", "broadcast", "prefetch", "batch", "stream", "from", "delivery",
                                       "deliveries", "streams", "groups", "next_offset", "committed_offset",
                                       "seq", "wall_ns", "text", "lines", "skipped", "skipped_seqs", "truncated",
                                       "received", "limit", "backlog", "follow", "trace", "level", "grep",
                                       "beginning", "now", "resume", "waiting"]) +
               [b"\x06status", b"\x07restart", b"\x05scale", b"\x04emit", b"\x09subscribe", b"\x04tail",
                b"\x05lines", b"\x08register", b"\x0dstart_service", b"\x0cstop_service"])


# ---- shellcmd ----------------------------------------------------------------------------------

def shellcmd_seeds():
    commands = {
        "simple": "gunicorn --bind fd://3 app:app",
        "cd-chain": "cd app && gunicorn app:app",
        "semicolons": "cd a; . ./env; export X=1; ./srv --x",
        "assignments": "cd x && A=1 B='two words' ./srv",
        "redirects": "cd app && ./srv >log 2>&1 <&0",
        "braces-param": "cd ${APP_DIR:-app} && ./srv",
        "pipe": "cd app && gunicorn app:app | tee log",
        "or": "./a || ./b",
        "background": "./srv & ./other",
        "subshell": "cd app && (./srv)",
        "substitution": "./srv \"$(cat args)\" `date`",
        "control": "if true; then ./a; fi; ./b",
        "trap": "trap 'echo bye' TERM; ./srv",
        "written-exec": "cd app; FOO=1 exec ./srv",
        "quotes": "cd 'my app' && ./srv \"a;b\" a\\;b",
        "builtin-last": "./a; wait",
    }
    write_corpus("shellcmd", list(commands.items()))
    write_dict("shellcmd", ["&&", ";", "||", "|", "&", ">&", "<&", "&>", "exec ", "cd ", "${", "$(", "`",
                            "'", '"', "\\", "A=1 ", "if ", "then ", "fi", "do ", "done", "trap ", "wait", "{ ",
                            " }", "#", "\n"])


# ---- sdquote -----------------------------------------------------------------------------------

def sdquote_seeds():
    commands = {
        "plain": "gunicorn --bind fd://3 app:app",
        "quotes": "python3 -c 'import x; x.run()' \"a \\\"b\\\" c\" it\\'s",
        "variables": "run $N \"${GREETING}\" \"--bind=127.0.0.1:$PORT\" 'cost $5' a$",
        "specifiers": "printf '%s %i\\n' 100%",
        "control": "run \"tab\tbell\a\" \";\"",
        "shell-only": "cd app && gunicorn --bind 127.0.0.1:$PORT app | tee log",
    }
    write_corpus("sdquote", list(commands.items()))
    write_dict("sdquote", ["$", "${", "}", "$$", "%", "%%", "'", '"', "\\", " ", ";", "\n", "\t", "&&", "|"])


# ---- envfile -----------------------------------------------------------------------------------

def envfile_seeds():
    files = {
        "plain": "# settings\nA=1\n  B = two words  \nexport C=3\nE=\nF=x # comment\nG=x#kept\n",
        "single": "A='${HOME} \\n literal'\nB='line one\nline two'\n",
        "double": 'A="tab\\there\\nnew \\"q\\" \\\\ \\$HOME"\nB="first\nsecond ${HOME}"  # c\n',
        "expand": "A=${HOME}/x\nB=${UNSET:-d} ${EMPTY:-e} ${EMPTY-f}\nC=${UNSET:-${A}-y}\nD=${A}${A}\n",
        "crlf-bom": "\ufeffA=1\r\nB=\"two\"\r\n",
        "compose": "COMPOSE_PROJECT_NAME=app\nDATABASE_URL=postgres://u:p@localhost:5432/db\n"
                   "SECRET_KEY_BASE='abc$def'\nexport PATH=\"${HOME}/bin:${PATH}\"\n",
        "bad-line": "A=1\nnot an assignment\n",
        "bad-quote": "A=\"open\nB=2\n",
        "bad-ref": "A=${B\nC=${D:-x\n",
    }
    write_corpus("envfile", list(files.items()))
    write_dict("envfile", ["=", "export ", "#", " #", "'", '"', "\\n", "\\t", "\\\"", "\\$", "\\\\",
                           "${", "}", ":-", "-", "${A}", "${A:-", "\n", "\r\n", b"\xef\xbb\xbf"])
# ---- procfile ----------------------------------------------------------------------------------

def procfile_seeds():
    seeds = {
        "rails": "web: bundle exec puma -C config/puma.rb -p $PORT\nworker: bundle exec sidekiq\n",
        "comments-blank-crlf": "# app\r\n\r\nweb: ./srv\r\n  # indented\r\nclock:\t./clock  \r\n",
        "formation": "web: ./srv\nworker: ./w\nrelease: ./migrate\n\0web=2,all=1",
        "quotes-escapes": "web: echo \"a\\\\b\" 'c' $(date) `id` \\t\n",
        "unicode": "web: echo \u00e9\u00a0\ufeff \U0001F600 \u0085\n",
        "yaml-words": "null: a\ntrue: b\n1: c\n-x: d\n_y: e\n",
        "bad-name": "web.1: x\n",
        "dup": "web: a\nweb: b\n",
        "no-command": "web:   \n",
        "bom": "\ufeffweb: a\n",
    }
    write_corpus("procfile", list(seeds.items()))
    write_dict("procfile", ["web", "worker", ":", ": ", "#", "\n", "\r\n", "\t", "\"", "\\", "$PORT", "$(",
                            "=", ",", "all=", b"\x00", b"\xef\xbb\xbf", b"\xc2\x85"])


def zkurl_seeds():
    urls = {
        "one": "zookeeper://127.0.0.1:2181",
        "many-chroot": "zookeeper://zk1:2181,zk2.example.com:2182,zk3/team/staging",
        "root": "zookeeper://localhost/",
        "bad-port": "zookeeper://h:99999/lymph",
        "bad-chroot": "zookeeper://h:1/a//b/../c?x#y",
    }
    write_corpus("zkurl", list(urls.items()))
    write_dict("zkurl", ["zookeeper://", ":2181", ",", "/", "/lymph", "..", ".", "[::1]", "@", "?", "#", ":65535"])


def main():
    config_seeds()
    framer_seeds()
    logparse_seeds()
    wire_seeds()
    rpcwire_seeds()
    handlers_seeds()
    streamrec_seeds()
    journal_seeds()
    tailwire_seeds()
    proto_seeds()
    shellcmd_seeds()
    sdquote_seeds()
    envfile_seeds()
    procfile_seeds()
    zkurl_seeds()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(CORPUS) for f in fs)
    print("seeds written to %s (%d bytes)" % (os.path.relpath(CORPUS, os.getcwd()), total), file=sys.stderr)


if __name__ == "__main__":
    main()
