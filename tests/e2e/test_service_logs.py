"""Per-service log files (issue 21, item 5): with `logs: {per_service: true}` each service's
lines also go to .devnode/logs/<Service>.log as plain prefixed lines, rotated like the main
JSON-lines file; the main file keeps every line as before."""
import json
import re

from conftest import BURST, wait_for

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (\S+) \| (.*)$")


def parsed(path):
    out = []
    for line in path.read_text().splitlines():
        m = LINE.match(line)
        assert m, f"{path.name}: not a plain prefixed line: {line!r}"
        out.append((m.group(1), m.group(2)))
    return out


def test_each_service_gets_a_plain_file_beside_the_main_log(project):
    node = project.write(r"""
logs: {per_service: true}
instances:
    Api:
        command: 'echo "api says $DEVNODE_INSTANCE"; printf "\033[1mbold\033[0m\n" >&2; exec sleep 1000'
        numprocesses: 2
    Mailer:
        command: 'echo "mail queued trace_id=abc123"; exec sleep 1000'
""").up("--no-tui")
    node.wait_running("Api", 2)
    node.wait_log(lambda r: r.get("service") == "Mailer" and "queued" in r["text"])
    node.wait_log(lambda r: r.get("service") == "Api" and r.get("instance") == 1 and "bold" in r["text"])
    logs = project.run_dir / "logs"
    wait_for(lambda: (logs / "Mailer.log").exists() and (logs / "Mailer.log").read_text(), 10, "Mailer.log")
    node.stop()
    api = parsed(logs / "Api.log")
    assert sorted(api) == [("Api.0", "api says 0"), ("Api.0", "bold"), ("Api.1", "api says 1"), ("Api.1", "bold")]
    assert parsed(logs / "Mailer.log") == [("Mailer.0", "mail queued trace_id=abc123")]
    assert any(name == "devnode" and text.startswith(f"node {node.pid} up") for name, text in parsed(logs / "devnode.log"))
    # The main file is what it always was: every line, as JSON.
    records = [json.loads(l) for l in (logs / "devnode.jsonl").read_text().splitlines()]
    assert sum(1 for r in records if r["service"] == "Api" and r["stream"] in ("stdout", "stderr")) == 4
    assert sorted(p.name for p in logs.iterdir()) == ["Api.log", "Mailer.log", "devnode.jsonl", "devnode.log"]


def test_without_per_service_there_is_only_the_main_log(project):
    node = project.write("""
instances:
    Api:
        command: 'echo hi; exec sleep 1000'
""").up("--no-tui")
    node.wait_log(lambda r: r.get("service") == "Api" and r["text"] == "hi")
    node.stop()
    assert sorted(p.name for p in (project.run_dir / "logs").iterdir()) == ["devnode.jsonl"]


def test_per_service_files_rotate_like_the_main_log(project):
    n = 30000  # 100-byte lines: ~4 MiB as plain lines, past file_max_mb three times
    node = project.write(f"""
logs: {{per_service: true, file_max_mb: 1, keep_files: 2}}
instances:
    Burst:
        command: exec {BURST} {n} r 100
        restart: never
""").up("--no-tui")
    node.wait_node_line(r"^Burst\.0 exited", timeout=60)
    node.stop()
    logs = project.run_dir / "logs"
    names = sorted(p.name for p in logs.iterdir() if p.name.startswith("Burst."))
    assert names == ["Burst.log", "Burst.log.1", "Burst.log.2"], names
    expected = 0
    kept = []
    for name in ("Burst.log.2", "Burst.log.1", "Burst.log"):
        path = logs / name
        assert path.stat().st_size <= 1 << 20, (name, path.stat().st_size)
        assert path.read_bytes().endswith(b"\n")
        kept += parsed(path)
    # Whole lines, in order, with no gap, up to the last one the worker wrote.
    numbers = []
    for name, text in kept:
        assert name == "Burst.0"
        m = re.match(r"^burst r (\d+) p+$", text)
        assert m and len(text) == 100, text
        numbers.append(int(m.group(1)))
    assert numbers == list(range(numbers[0], n)), (numbers[:3], numbers[-3:])
    assert numbers[0] > 0  # the oldest went with the rotation beyond keep_files
    # The main file rotated on its own and is complete from its oldest kept line on.
    main = sorted(p.name for p in logs.iterdir() if p.name.startswith("devnode.jsonl"))
    assert main == ["devnode.jsonl", "devnode.jsonl.1", "devnode.jsonl.2"], main
