"""Restart limits (issue 20 item 4): `max_restarts` within `restart_window` leaves a crashing
instance `failed`, with the reason, until `devnode restart`."""
import re

from conftest import wait_for

CRASHER = """\
instances:
    Crash:
        command: echo boom; exit 1
        max_restarts: 2
        restart_window: 60s
    Calm:
        command: exec sleep 1000
"""

WHY = "gave up after 2 restarts within 60s (max_restarts): exited with status 1"


def failed_instance(node, service):
    inst = node.service(service)["instances"][0]
    return inst if inst["state"] == "failed" else None


def test_crash_loop_past_max_restarts_is_failed_until_restart(project):
    project.write(CRASHER)
    node = project.up()
    inst = wait_for(lambda: failed_instance(node, "Crash"), 15, "Crash.0 to be failed")
    assert inst["failure"] == WHY, inst
    assert inst["restarts"] == 2 and inst["pid"] == 0, inst
    assert inst["last_exit"]["code"] == 1, inst
    gave_up = node.wait_node_line(re.escape(f"Crash.0 exited with status 1 after ") + r"\d+\.\ds; " +
                                  re.escape(f"{WHY}; failed until `devnode restart Crash`"))
    assert gave_up["level"] == "error"
    # Three processes ran, and no more: failed is not a longer backoff.
    assert len(node.node_lines(r"^Crash\.0 started \(pid \d+\)$")) == 3
    node.wait_running("Calm", 1)

    # status: the reason under the instance, the state and reason in red with colour.
    r = node.cli("status", "--color=always")
    assert r.returncode == 0, r.stderr
    assert re.search(r"Crash\.0 +\x1b\[31mfailed +\x1b\[0m", r.stdout), r.stdout
    assert f"\x1b[31m{WHY}\x1b[0m" in r.stdout, r.stdout
    r = node.cli("status", "--color=never")
    assert "\x1b[" not in r.stdout and WHY in r.stdout, r.stdout

    # `devnode restart` starts it again, with its count at zero: two more restarts, then failed.
    assert node.cli("restart", "--no-wait", "Crash").returncode == 0
    again = node.wait_node_line(re.escape(WHY), after_seq=gave_up["seq"])
    assert len(node.node_lines(r"^Crash\.0 started \(pid \d+\)$")) == 6
    inst = wait_for(lambda: failed_instance(node, "Crash"), 15, "Crash.0 to be failed again")
    assert inst["restarts"] == 5 and again["seq"] > gave_up["seq"]


def test_check_shows_the_limit_and_refuses_a_negative_one(project):
    project.write(CRASHER)
    r = project.cli("check")
    assert r.returncode == 0, r.stderr
    assert "      max_restarts=2 within 60s, then failed\n" in r.stdout, r.stdout
    project.write(CRASHER.replace("max_restarts: 2", "max_restarts: -1"))
    r = project.cli("check")
    assert r.returncode == 2 and r.stdout == "", r
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        ".lymph.yml:4:23: instances.Crash.max_restarts: must be a non-negative integer, got -1"), r.stderr


def test_export_gives_systemd_the_same_limit(project, tmp_path):
    project.write(CRASHER)
    out = tmp_path / "units"
    r = project.cli("export", "systemd", str(out), "--name", "p")
    assert r.returncode == 0, r.stderr
    crash = (out / "p-Crash@.service").read_text()
    assert "\nStartLimitIntervalSec=60s\nStartLimitBurst=3\n" in crash, crash
    calm = (out / "p-Calm@.service").read_text()
    assert "\nStartLimitIntervalSec=0\n" in calm and "StartLimitBurst" not in calm, calm
