"""How systemd reads an EnvironmentFile= and builds a unit's environment, for tests that cannot
run systemd itself (no systemd as PID 1 here, no user manager). A line-for-line port of
parse_env_file_internal() and load_env_file_push() in systemd's src/basic/env-file.c, plus the
clean-up exec_context_load_environment() does (strv_env_clean: a name of letters, digits and
'_' not starting with a digit, a valid UTF-8 value, the last assignment of a name wins), and
systemd.exec(5)'s "settings from these files override settings made with Environment="."""
import re

NEWLINE = "\n\r"
WHITESPACE = " \t\n\r"
COMMENTS = "#;"
SHELL_NEED_ESCAPE = '"\\`$'


def parse(text):
    """The (key, value) pairs systemd's parser hands on, in order (value None: `KEY=` at EOF
    without a value is still pushed, as systemd does)."""
    out = []
    state = "PRE_KEY"
    key, value = [], None
    last_key_ws = last_value_ws = None

    def push():
        nonlocal key, value
        k = "".join(key if last_key_ws is None else key[:last_key_ws])
        out.append((k, "".join(value) if value is not None else None))
        key, value = [], None

    def add(c):
        nonlocal value
        if value is None:
            value = []
        value.append(c)

    for c in text:
        if state == "PRE_KEY":
            if c in COMMENTS:
                state = "COMMENT"
            elif c not in WHITESPACE:
                state, last_key_ws = "KEY", None
                key.append(c)
        elif state == "KEY":
            if c in NEWLINE:
                state, key = "PRE_KEY", []
            elif c == "=":
                state, last_value_ws = "PRE_VALUE", None
            else:
                if c not in WHITESPACE:
                    last_key_ws = None
                elif last_key_ws is None:
                    last_key_ws = len(key)
                key.append(c)
        elif state == "PRE_VALUE":
            if c in NEWLINE:
                state = "PRE_KEY"
                push()
            elif c == "'":
                state = "SINGLE_QUOTE_VALUE"
            elif c == '"':
                state = "DOUBLE_QUOTE_VALUE"
            elif c == "\\":
                state = "VALUE_ESCAPE"
            elif c not in WHITESPACE:
                state = "VALUE"
                add(c)
        elif state == "VALUE":
            if c in NEWLINE:
                state = "PRE_KEY"
                if last_value_ws is not None:
                    value = value[:last_value_ws]
                push()
            elif c == "\\":
                state, last_value_ws = "VALUE_ESCAPE", None
            else:
                if c not in WHITESPACE:
                    last_value_ws = None
                elif last_value_ws is None:
                    last_value_ws = len(value or [])
                add(c)
        elif state == "VALUE_ESCAPE":
            state = "VALUE"
            if c not in NEWLINE:
                add(c)
        elif state == "SINGLE_QUOTE_VALUE":
            if c == "'":
                state = "PRE_VALUE"
            else:
                add(c)
        elif state == "DOUBLE_QUOTE_VALUE":
            if c == '"':
                state = "PRE_VALUE"
            elif c == "\\":
                state = "DOUBLE_QUOTE_VALUE_ESCAPE"
            else:
                add(c)
        elif state == "DOUBLE_QUOTE_VALUE_ESCAPE":
            state = "DOUBLE_QUOTE_VALUE"
            if c in SHELL_NEED_ESCAPE:
                add(c)
            elif c != "\n":
                add("\\")
                add(c)
        elif state == "COMMENT":
            if c == "\\":
                state = "COMMENT_ESCAPE"
            elif c in NEWLINE:
                state = "PRE_KEY"
        elif state == "COMMENT_ESCAPE":
            state = "PRE_KEY" if c in NEWLINE else "COMMENT"
    if state in ("PRE_VALUE", "VALUE", "VALUE_ESCAPE", "SINGLE_QUOTE_VALUE", "DOUBLE_QUOTE_VALUE",
                 "DOUBLE_QUOTE_VALUE_ESCAPE"):
        if state == "VALUE" and last_value_ws is not None:
            value = value[:last_value_ws]
        push()
    return out


def load(raw):
    """The assignments a unit gets from the file's bytes: lines that are not UTF-8 are
    dropped (systemd logs and ignores them), then invalid names, the last one wins."""
    text = raw.decode("utf-8", errors="surrogateescape")
    env = {}
    for k, v in parse(text):
        v = v or ""
        try:
            k.encode("utf-8")
            v.encode("utf-8")
        except UnicodeEncodeError:
            continue
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            env[k] = v
    return env


def unit_environment(unit_path, instance="0"):
    """The environment a unit's settings give its process: Environment= in order, then every
    EnvironmentFile= (%Y and %i resolved), which win over them."""
    text = unit_path.read_text()
    env = {}
    for value in re.findall(r'^Environment="(.*)"$', text, re.M):
        name, _, v = value.replace('\\"', '"').replace("\\\\", "\\").partition("=")
        env[name] = v.replace("%i", instance).replace("%%", "%")
    for path in re.findall(r"^EnvironmentFile=(.*)$", text, re.M):
        path = path.replace("%Y", str(unit_path.parent))
        env.update(load(open(path, "rb").read()))
    return env
