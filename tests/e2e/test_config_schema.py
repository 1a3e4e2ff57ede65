"""`devnode schema`: the JSON Schema of .lymph.yml comes from the loader's own key table. The
keys the loader names in its unknown-key messages (the table, as the parser sees it) must all be
in the schema and on docs/config.md; the project's configs validate and broken ones do not."""
import json
import re
import subprocess

import pytest
import yaml

from conftest import DEVNODE, ROOT, base_env

DOCS = ROOT / "docs" / "config.md"
CONFIGS = [ROOT / ".lymph.yml", ROOT / "examples" / "bookshelf" / ".lymph.yml",
           ROOT / "examples" / "pipeline" / ".lymph.yml"]


def schema():
    r = subprocess.run([str(DEVNODE), "schema"], capture_output=True, text=True, env=base_env(), timeout=10)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    return json.loads(r.stdout)


def choices(node):
    """node and every alternative of its anyOf."""
    return [node] + [c for alt in node.get("anyOf", []) for c in choices(alt)]


def props(node, path):
    """The properties of the object at path (keys; '*' steps into a map's values or a list's items)."""
    for step in path:
        found = None
        for c in choices(node):
            if step == "*":
                found = found or (c.get("additionalProperties") if isinstance(c.get("additionalProperties"), dict)
                                  else None) or c.get("items")
            elif step in c.get("properties", {}):
                found = c["properties"][step]
        assert found is not None, f"no {step!r} in the schema at {path}"
        node = found
    out = {}
    for c in choices(node):
        out.update(c.get("properties", {}))
    return out


# ------------------------------------------------- a subset of draft-07, for when jsonschema is missing
def valid(inst, s):
    if "anyOf" in s and not any(valid(inst, alt) for alt in s["anyOf"]):
        return False
    if "enum" in s and not any(inst == e and type(inst) is type(e) for e in s["enum"]):
        return False
    types = s.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
        def is_type(t):
            if t in ("integer", "number"):
                return isinstance(inst, (int, float)) and not isinstance(inst, bool) and \
                    (t == "number" or float(inst).is_integer())
            return isinstance(inst, kinds[t])
        if not any(is_type(t) for t in types):
            return False
    if isinstance(inst, (int, float)) and not isinstance(inst, bool):
        if inst < s.get("minimum", inst) or inst > s.get("maximum", inst):
            return False
    if isinstance(inst, str) and "pattern" in s and not re.search(s["pattern"], inst):
        return False
    if isinstance(inst, list) and "items" in s and not all(valid(i, s["items"]) for i in inst):
        return False
    if isinstance(inst, dict):
        if any(k not in inst for k in s.get("required", [])):
            return False
        known = s.get("properties", {})
        for k, v in inst.items():
            if k in known:
                if not valid(v, known[k]):
                    return False
            elif s.get("additionalProperties") is False:
                return False
            elif isinstance(s.get("additionalProperties"), dict) and not valid(v, s["additionalProperties"]):
                return False
    return True


def validators(s):
    out = [lambda doc: valid(doc, s)]
    try:
        import jsonschema
    except ImportError:
        return out
    jsonschema.Draft7Validator.check_schema(s)
    out.append(lambda doc: jsonschema.Draft7Validator(s).is_valid(doc))
    return out


# ------------------------------------------------------------------------------------------ tests
def test_schema_is_draft07_json_an_editor_can_use():
    s = schema()
    assert s["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert s["additionalProperties"] is False
    assert props(s, ["instances", "*"])["numprocesses"]["default"] == 1
    services = [c["additionalProperties"] for c in choices(s["properties"]["instances"])
                if isinstance(c.get("additionalProperties"), dict)]
    assert [svc.get("required") for svc in services] == [["command"]]
    for key, row in props(s, ["instances", "*"]).items():
        assert row.get("description"), f"{key} has no description"


def test_schema_takes_no_arguments():
    r = subprocess.run([str(DEVNODE), "schema", "extra"], capture_output=True, text=True, env=base_env(),
                       timeout=10)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith("devnode: schema: takes no arguments"), r.stderr


# Each section provoked with an unknown key; the loader's message lists what the section takes.
SECTIONS = [
    ([], "instancez: {}\n"),
    (["instances", "*"], "instances:\n  A:\n    command: x\n    bogus: 1\n"),
    (["instances", "*", "ready"], "instances:\n  A:\n    command: x\n    ready: {grpc: 1}\n"),
    (["instances", "*", "live"], "instances:\n  A:\n    command: x\n    live: {grpc: 1}\n"),
    (["sockets", "*"], "sockets:\n  W:\n    backlog: 1\n"),
    (["logs"], "logs:\n  rotate: 1\n"),
    (["streams", "*"], "streams:\n  book.#:\n    keep: 1\n"),
]


def loader_keys(tmp_path, text):
    cfg = tmp_path / ".lymph.yml"
    cfg.write_text(text)
    r = subprocess.run([str(DEVNODE), "check", "-c", str(cfg)], capture_output=True, text=True, env=base_env(),
                       timeout=10, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    m = re.search(r"unknown key \((?:a service|a socket|a stream|logs|ready|live) takes ([^)]*)\)"
                  r"|unknown key \(the node reads ([^;]*);", r.stderr)
    assert m, r.stderr
    return (m.group(1) or m.group(2)).split(", ")


@pytest.mark.parametrize("path,text", SECTIONS, ids=[".".join(p) or "top" for p, _ in SECTIONS])
def test_every_key_the_loader_takes_is_in_the_schema_and_the_docs(tmp_path, path, text):
    keys = loader_keys(tmp_path, text)
    assert len(keys) >= 1
    in_schema = props(schema(), path)
    docs = DOCS.read_text()
    spans = re.findall(r"`([^`\n]+)`", docs)
    for key in keys:
        assert key in in_schema, f"{key} (under {'.'.join(path) or 'the top level'}) is not in the schema"
        assert any(re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", span) for span in spans), \
            f"{key} (under {'.'.join(path) or 'the top level'}) is not documented in docs/config.md"


def test_every_schema_key_is_documented():
    docs = DOCS.read_text()
    spans = re.findall(r"`([^`\n]+)`", docs)

    def walk(node, where):
        for c in choices(node):
            for key, sub in c.get("properties", {}).items():
                assert any(re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", span) for span in spans), \
                    f"{where}{key} is in the schema but not in docs/config.md"
                walk(sub, f"{where}{key}.")
            for sub in (c.get("additionalProperties"), c.get("items")):
                if isinstance(sub, dict):
                    walk(sub, f"{where}*.")
    walk(schema(), "")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_project_configs_validate(path):
    doc = yaml.safe_load(path.read_text())
    for check in validators(schema()):
        assert check(doc), f"{path} does not validate against `devnode schema`"


BAD = {
    "unknown service key": "instances:\n  A:\n    command: x\n    numprocess: 2\n",
    "unknown top-level key": "instancez: {}\n",
    "restart value": "instances:\n  A:\n    command: x\n    restart: sometimes\n",
    "numprocesses range": "instances:\n  A:\n    command: x\n    numprocesses: -1\n",
    "no command": "instances:\n  A:\n    numprocesses: 2\n",
    "duration unit": "instances:\n  A:\n    command: x\n    stop_timeout: 5m\n",
    "logs key": "logs:\n  rotate: 1\n",
    "ready form": "instances:\n  A:\n    command: x\n    ready: {grpc: 80}\n",
}


@pytest.mark.parametrize("name", BAD)
def test_a_broken_config_does_not_validate_and_devnode_refuses_it_too(tmp_path, name):
    doc = yaml.safe_load(BAD[name])
    for check in validators(schema()):
        assert not check(doc), f"{name}: the schema accepts it"
    cfg = tmp_path / ".lymph.yml"
    cfg.write_text(BAD[name])
    r = subprocess.run([str(DEVNODE), "check", "-c", str(cfg)], capture_output=True, text=True, env=base_env(),
                       timeout=10, cwd=tmp_path)
    assert r.returncode == 2, r.stderr


def test_interpolated_and_empty_values_validate():
    doc = yaml.safe_load("instances:\n  A:\n    command: x\n    numprocesses: $(env.N)\n    restart:\n"
                         "    stop_timeout: 500ms\n    env: {A: 1, B: yes}\nstreams:\n  order.created:\n"
                         "container: {anything: [1]}\n")
    for check in validators(schema()):
        assert check(doc)
