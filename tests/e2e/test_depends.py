"""depends_on through the binary (docs/dependencies.md): a cycle, an unknown name, a service
depending on itself and waiting for a service that restarts always to complete are refused with
one line naming file:line:col, by `up` before anything runs and by `check`; `devnode graph`
prints the tree (and --json the graph, its layers and stop order) without a node; `check`
shows the start layers; `export systemd` turns the edges into units systemd accepts."""
import json

import pytest

from conftest import base_env
from test_config_errors import RUNS, assert_refused, line_col, run_up
from test_export import unit_files, verify

PROJECT = f"""instances:
    Web:
        command: {RUNS}
        depends_on: [Api, Cache]
    Api:
        command: {RUNS}
        depends_on:
            Db: {{condition: ready, restart: true}}
            Migrate: completed
    Worker:
        command: {RUNS}
        depends_on: {{Db: started, Migrate: service_completed_successfully}}
    Migrate:
        command: {RUNS}
        restart: on-failure
        depends_on: [Db]
    Db:
        command: {RUNS}
    Cache:
        command: {RUNS}
        numprocesses: 2
        disabled: true
"""

TREE = """\
Web
├── Api (ready)
│   ├── Db (ready, restart: true)
│   └── Migrate (completed)
│       └── Db (ready)
└── Cache (ready) [disabled] [x2]
Worker
├── Db (started)
└── Migrate (completed) (*)
"""

CYCLE = f"""instances:
    Web:
        command: {RUNS}
        depends_on: [Api]
    Api:
        command: {RUNS}
        depends_on:
            Db: ready
    Db:
        command: {RUNS}
        depends_on: {{Web: started}}
"""

ARROW = " \u2192 "

REFUSED = {
    # name: (config, needle, value for the column, message after the key path)
    "cycle": (CYCLE, "depends_on: [Api]", "Api", "cycle " + ARROW.join(["Web", "Api", "Db", "Web"])),
    "unknown_name": (
        f"instances:\n    Web:\n        command: {RUNS}\n        depends_on: {{Db: ready, Dbx: started}}\n"
        f"    Db:\n        command: {RUNS}\n",
        "depends_on:", "Dbx", 'no service named "Dbx" (services: Web, Db)'),
    "itself": (
        f"instances:\n    Web:\n        command: {RUNS}\n        depends_on: [Web]\n",
        "depends_on:", "Web", "Web depends on itself"),
    "completed_restarts_always": (
        f"instances:\n    Web:\n        command: {RUNS}\n        depends_on: {{Migrate: completed}}\n"
        f"    Migrate:\n        command: {RUNS}\n",
        "depends_on:", "Migrate",
        "Web waits for Migrate to complete, but Migrate restarts always (the default), so it never stays "
        "completed: give Migrate restart: never or on-failure, or wait for ready or started"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_one_exact_line_before_anything_runs(project, case):
    config, needle, value, message = REFUSED[case]
    project.write(config)
    line, col = line_col(config, needle, 1, value)
    result = run_up(project)
    assert_refused(project, result, ".lymph.yml", line, col, None, message)
    svc = "Web"
    assert result.stderr == f"devnode: .lymph.yml:{line}:{col}: instances.{svc}.depends_on: {message}\n"
    check = project.cli("check")
    assert (check.returncode, check.stdout) == (2, "")
    assert check.stderr == f"devnode: {project.config_path}:{line}:{col}: instances.{svc}.depends_on: {message}\n"
    graph = project.cli("graph")
    assert (graph.returncode, graph.stdout, graph.stderr) == (2, "", check.stderr)


def test_graph_prints_the_tree_without_a_node(project):
    project.write(PROJECT)
    r = project.cli("graph")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout == TREE
    assert not (project.run_dir / "node.lock").exists() and not list(project.dir.glob("spawned-*"))


def test_graph_of_named_services_shows_what_they_need(project):
    project.write(PROJECT)
    r = project.cli("graph", "Worker", "Cache")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout == ("Worker\n├── Db (started)\n└── Migrate (completed)\n    └── Db (ready)\n"
                        "Cache [disabled] [x2]\n")
    bad = project.cli("graph", "Web", "Nope")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == "devnode: graph: no service 'Nope' (known: Api, Cache, Db, Migrate, Web, Worker)\n"


def test_graph_json(project):
    project.write(PROJECT)
    r = project.cli("graph", "--json")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    g = json.loads(r.stdout)
    assert g["config"] == str(project.config_path)
    services = {s["name"]: s for s in g["services"]}
    assert [s["name"] for s in g["services"]] == ["Web", "Api", "Worker", "Migrate", "Db", "Cache"]
    assert services["Api"]["depends_on"] == [{"name": "Db", "condition": "ready", "restart": True},
                                             {"name": "Migrate", "condition": "completed", "restart": False}]
    assert services["Web"]["depends_on"][0] == {"name": "Api", "condition": "ready", "restart": False}
    assert services["Worker"]["depends_on"][1]["condition"] == "completed"
    assert services["Db"]["dependents"] == ["Api", "Worker", "Migrate"]
    assert services["Cache"] | {"depends_on": None} == {"name": "Cache", "numprocesses": 2, "disabled": True,
                                                        "layer": 0, "depends_on": None, "dependents": ["Web"]}
    assert {n: s["layer"] for n, s in services.items()} == {"Db": 0, "Cache": 0, "Migrate": 1, "Api": 2,
                                                            "Worker": 2, "Web": 3}
    assert g["roots"] == ["Web", "Worker"]
    assert g["layers"] == [["Db", "Cache"], ["Migrate"], ["Api", "Worker"], ["Web"]]
    assert g["stop_order"] == ["Web", "Worker", "Api", "Migrate", "Cache", "Db"]
    # Named: the subset `up Migrate` would start.
    sub = json.loads(project.cli("graph", "--json", "Migrate", check=True).stdout)
    assert sub["layers"] == [["Db"], ["Migrate"]] and sub["stop_order"] == ["Migrate", "Db"]
    assert [s["name"] for s in sub["services"]] == ["Migrate", "Db"]


def test_graph_needs_no_environment(project):
    """The graph is names and edges: an unset $(env.X) in a command does not stop it."""
    project.write(f"instances:\n    A:\n        command: run $(env.DEVNODE_E2E_UNSET)\n        depends_on: [B]\n"
                  f"    B:\n        command: {RUNS}\n")
    r = project.cli("graph", env=base_env())
    assert (r.returncode, r.stdout, r.stderr) == (0, "A\n└── B (ready)\n", "")


def test_check_shows_dependencies_and_start_layers(project):
    project.write(PROJECT)
    r = project.cli("check")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert "      depends_on: Api (ready), Cache (ready)\n" in r.stdout
    assert "      depends_on: Db (ready, restart: true), Migrate (completed)\n" in r.stdout
    assert "      disabled: kept down unless named or needed" in r.stdout
    start = r.stdout.index("start order (")
    assert r.stdout[start:].splitlines()[1:5] == ["  1. Db, Cache", "  2. Migrate", "  3. Api, Worker", "  4. Web"]
    assert not list(project.dir.glob("spawned-*"))
    # Without depends_on every service is one layer: no start order is shown.
    project.write(f"instances:\n    A:\n        command: {RUNS}\n    B:\n        command: {RUNS}\n")
    r = project.cli("check", check=True)
    assert "start order" not in r.stdout and "depends_on" not in r.stdout


def test_check_warns_about_a_dependency_scaled_to_zero(project):
    project.write(f"instances:\n    A:\n        command: {RUNS}\n        depends_on: [B]\n"
                  f"    B:\n        command: {RUNS}\n        numprocesses: 0\n")
    r = project.cli("check", check=True)
    assert "warnings:\n  A depends on B, which has numprocesses: 0, so there is nothing to wait for\n" in r.stdout


def test_export_turns_edges_into_units_systemd_accepts(project, tmp_path):
    project.write(PROJECT.replace(RUNS, "sleep 1000"))
    out = tmp_path / "units"
    r = project.cli("export", "systemd", str(out), "--name", "p")
    assert r.returncode == 0, r.stderr
    verify(out, tmp_path)
    api = (out / "p-Api@.service").read_text()
    assert "\nRequires=p-Db@0.service\nAfter=p-Db@0.service\nPartOf=p-Db@0.service\n" in api
    assert "\nRequires=p-Migrate@0.service\nAfter=p-Migrate@0.service\n" in api
    web = (out / "p-Web@.service").read_text()
    assert "\nRequires=p-Cache@0.service p-Cache@1.service\nAfter=p-Cache@0.service p-Cache@1.service\n" in web
    assert "\nWants=p-Db@0.service\nAfter=p-Db@0.service\n" in (out / "p-Worker@.service").read_text()
    assert "\nType=oneshot\nRemainAfterExit=yes\n" in (out / "p-Migrate@.service").read_text()
    target = (out / "p.target").read_text()
    assert "p-Cache@" not in target.replace("# Cache is disabled", "") and "Wants=p-Web@0.service" in target
    assert "p-Cache@.service" in unit_files(out)


def test_up_acts_on_the_order(project):
    """The order is acted on (test_order.py has the rest): no warning, the dependency first."""
    project.write(f"instances:\n    A:\n        command: {RUNS}\n        depends_on: [B]\n"
                  f"    B:\n        command: {RUNS}\n")
    node = project.up("--no-tui")
    node.wait_running("A", 1)
    assert "warning" not in node.output()
    started = [r["text"].split(" ")[0] for r in node.node_lines(r"^[AB]\.0 started")]
    assert started == ["B.0", "A.0"], started
