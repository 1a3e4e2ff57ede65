"""Environment files (docs/config.md "Environment files"): the .env beside .lymph.yml and the
env_file: lists, seen in the environment the workers really get (each worker writes its own
environment to a file), in `check` with each value's source, and refused at once with
FILE:LINE when a line is malformed."""
import subprocess

from conftest import DEVNODE, base_env, wait_for
from test_config_errors import assert_refused, run_up

# Each worker writes its environment (NUL-separated, so multi-line values survive) and stays.
DUMP = "env -0 > env-$DEVNODE_SERVICE.tmp && mv env-$DEVNODE_SERVICE.tmp env-$DEVNODE_SERVICE.out && exec sleep 1000"


def worker_env(project, service, node):
    path = project.dir / f"env-{service}.out"

    def read():
        if not node.alive():
            raise AssertionError(f"devnode up exited: {node.describe()}")
        return path.read_bytes() if path.exists() else None
    raw = wait_for(read, 15, f"{service} to write its environment")
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            env[k.decode()] = v.decode()
    return env


def service_block(check_out, service):
    """The lines `check` prints for one service, up to the next service or section."""
    lines, inside = [], False
    for line in check_out.splitlines():
        if line.startswith(f"  {service} x"):
            inside = True
        elif inside and not line.startswith("      "):
            break
        elif inside:
            lines.append(line.strip())
    return lines


DIALECT = """\
# a comment, then a blank line

export EXPORTED=yes
PLAIN = two words   # an inline comment
HASH=a#b
SINGLE='${HOME} \\n stays'
DOUBLE="tab\\there\\nnext \\"q\\" \\$HOME"
MULTI="first line
second line"
MULTI_SINGLE='one
two'
BASE=/srv/app
EXPANDED=${BASE}/data
DEFAULTED=${UNSET_IN_TEST:-fallback}
EMPTY_ONE=
DEFAULT_EMPTY=${EMPTY_ONE:-used}
DASH_EMPTY=${EMPTY_ONE-kept empty}
NESTED=${UNSET_IN_TEST:-${BASE}/nested}
QUOTED_EXPANSION="${BASE} and ${UNSET_IN_TEST-}"
"""


def test_the_dialect_reaches_the_worker(project):
    project.write(f"instances:\n    Dump:\n        command: {DUMP}\n", {".env": DIALECT})
    node = project.up()
    env = worker_env(project, "Dump", node)
    want = {
        "EXPORTED": "yes",
        "PLAIN": "two words",
        "HASH": "a#b",
        "SINGLE": "${HOME} \\n stays",
        "DOUBLE": 'tab\there\nnext "q" $HOME',
        "MULTI": "first line\nsecond line",
        "MULTI_SINGLE": "one\ntwo",
        "BASE": "/srv/app",
        "EXPANDED": "/srv/app/data",
        "DEFAULTED": "fallback",
        "DEFAULT_EMPTY": "used",
        "DASH_EMPTY": "",
        "EMPTY_ONE": "",
        "NESTED": "/srv/app/nested",
        "QUOTED_EXPANSION": "/srv/app and ",
    }
    assert {k: env.get(k) for k in want} == want
    node.stop()
    check = project.cli("check", check=True).stdout
    block = service_block(check, "Dump")
    assert 'MULTI="first line\\nsecond line"  (.env:8)' in block
    assert "EXPANDED=/srv/app/data  (.env:13)" in block
    assert "EXPORTED=yes  (.env:3)" in block


PRECEDENCE_CONFIG = f"""\
env_file: [common.env, later.env]
instances:
    Own:
        command: {DUMP}
        env_file: [own.env]
        env:
            ENV_OVER_OWN: from-env
    Plain:
        command: {DUMP}
"""

PRECEDENCE_FILES = {
    ".env": "ONLY_DOTENV=dotenv\nSHELL_OVER_DOTENV=dotenv\nCOMMON_OVER_DOTENV=dotenv\n"
            "COMMON_OVER_SHELL=dotenv\nPORT=3000\n",
    "common.env": "COMMON_OVER_DOTENV=common\nCOMMON_OVER_SHELL=common\nLATER_OVER_COMMON=common\n"
                  "OWN_OVER_COMMON=common\nSEEN=${SHELL_OVER_DOTENV}+${ONLY_DOTENV}\n",
    "later.env": "LATER_OVER_COMMON=later\n",
    "own.env": "OWN_OVER_COMMON=own\nENV_OVER_OWN=own\nOWN_SEES=${LATER_OVER_COMMON}\n",
}


def test_each_layer_beats_the_one_below(project):
    """.env < the shell < top-level env_file (in order) < the service's env_file < env:."""
    project.write(PRECEDENCE_CONFIG, PRECEDENCE_FILES)
    shell = {"SHELL_OVER_DOTENV": "shell", "COMMON_OVER_SHELL": "shell", "ONLY_SHELL": "shell"}
    node = project.up(env=project.node_env(**shell))
    own, plain = worker_env(project, "Own", node), worker_env(project, "Plain", node)
    both = {
        "ONLY_DOTENV": "dotenv",
        "SHELL_OVER_DOTENV": "shell",
        "ONLY_SHELL": "shell",
        "COMMON_OVER_DOTENV": "common",
        "COMMON_OVER_SHELL": "common",
        "LATER_OVER_COMMON": "later",
        "SEEN": "shell+dotenv",
    }
    assert {k: own.get(k) for k in both} == both
    assert {k: plain.get(k) for k in both} == both
    assert own["OWN_OVER_COMMON"] == "own" and plain["OWN_OVER_COMMON"] == "common"
    assert own["ENV_OVER_OWN"] == "from-env" and "ENV_OVER_OWN" not in plain
    assert own["OWN_SEES"] == "later"
    # A PORT in .env is the shell's kind of PORT: each service keeps its own from its block.
    assert own["PORT"] == "5000" and plain["PORT"] == "5100"
    node.stop()

    check = project.cli("check", env=base_env(**shell), check=True).stdout
    block = service_block(check, "Own")
    for line in ("ONLY_DOTENV=dotenv  (.env:1)", "COMMON_OVER_DOTENV=common  (common.env:1)",
                 "COMMON_OVER_SHELL=common  (common.env:2)", "LATER_OVER_COMMON=later  (later.env:1)",
                 "OWN_OVER_COMMON=own  (own.env:1)", "ENV_OVER_OWN=from-env  (env:, line 7)",
                 "SHELL_OVER_DOTENV=shell  (the shell, over .env:2)",
                 "PORT=3000  (.env:5, not used: each instance gets its own PORT, below)",
                 "PORT 5000 (block 5000-5099)"):
        assert line in block, f"{line!r} not in {block}"
    assert "OWN_OVER_COMMON=common  (common.env:4)" in service_block(check, "Plain")


def test_dotenv_feeds_env_references_in_the_config(project):
    """A DATABASE_URL defined only in .env resolves $(env.DATABASE_URL); the shell still wins."""
    config = f"""\
instances:
    Api:
        command: {DUMP}
        env:
            DB: $(env.DATABASE_URL)
            WHO: $(env.WHO)
"""
    project.write(config, {".env": "DATABASE_URL=postgres://localhost/app\nWHO=dotenv\n"})
    node = project.up(env=project.node_env(WHO="shell"))
    env = worker_env(project, "Api", node)
    assert env["DB"] == "postgres://localhost/app" and env["DATABASE_URL"] == "postgres://localhost/app"
    assert env["WHO"] == "shell"
    node.stop()
    # Without .env the reference is undefined, as before.
    r = project.cli("check", "--no-dotenv")
    assert r.returncode == 2
    assert r.stderr == (f"devnode: {project.config_path}:5:17: instances.Api.env.DB: "
                        "undefined variable $(env.DATABASE_URL)\n")


def test_a_malformed_line_names_file_and_line_and_nothing_starts(project):
    config = "instances:\n    Web:\n        command: touch spawned-web; exec sleep 1000\n"
    project.write(config, {".env": "A=1\n# fine\nthis is not an assignment\n"})
    result = run_up(project)
    message = "expected '=' after this, got 'i'"
    assert_refused(project, result, ".env", 3, None, None, message)
    assert result.stderr == f"devnode: .env:3: {message}\n"
    check = project.cli("check")
    assert check.returncode == 2 and check.stdout == ""
    assert check.stderr == f"devnode: {project.dir}/.env:3: {message}\n"

    project.write(config + "        env_file: [web.env]\n",
                  {".env": "A=1\n", "web.env": 'OK=1\nQUOTED="never closed\nB=2\n'})
    result = run_up(project)
    assert_refused(project, result, "web.env", 2, None, None, "")
    assert result.stderr == "devnode: web.env:2: the double quote of QUOTED's value is not closed\n"

    project.write(config + "        env_file: [missing.env]\n")
    result = run_up(project)
    assert_refused(project, result, ".lymph.yml", 4, 20, "instances.Web.env_file[0]", "")
    assert result.stderr == ("devnode: .lymph.yml:4:20: instances.Web.env_file[0]: cannot read missing.env: "
                             "No such file or directory\n")


def test_no_dotenv_leaves_the_file_unread(project):
    project.write(f"instances:\n    Dump:\n        command: {DUMP}\n",
                  {".env": "FROM_DOTENV=1\nthis line would be refused\n"})
    assert project.cli("check").returncode == 2
    check = project.cli("check", "--no-dotenv", check=True).stdout
    assert "FROM_DOTENV" not in check
    node = project.up("--no-dotenv")
    env = worker_env(project, "Dump", node)
    assert "FROM_DOTENV" not in env
    node.stop()


def test_check_masks_secret_values_and_up_passes_them(project):
    config = f"""\
instances:
    Api:
        command: {DUMP}
        env:
            DB_PASSWORD: hunter2-env
            LOG_LEVEL: debug
"""
    project.write(config, {".env": "API_TOKEN=tok-dotenv-123\nSECRET_KEY_BASE='sk-456'\naws_access_key=ak-789\n"
                                   "EMPTY_TOKEN=\nDATABASE_URL=postgres://db\n"})
    r = project.cli("check", check=True)
    block = service_block(r.stdout, "Api")
    for line in ("API_TOKEN=********  (.env:1)", "SECRET_KEY_BASE=********  (.env:2)",
                 "aws_access_key=********  (.env:3)", "EMPTY_TOKEN=  (.env:4)",
                 "DATABASE_URL=postgres://db  (.env:5)", "DB_PASSWORD=********  (env:, line 5)",
                 "LOG_LEVEL=debug  (env:, line 6)"):
        assert line in block, f"{line!r} not in {block}"
    for secret in ("tok-dotenv-123", "sk-456", "ak-789", "hunter2-env"):
        assert secret not in r.stdout + r.stderr
    node = project.up()
    env = worker_env(project, "Api", node)
    assert (env["API_TOKEN"], env["SECRET_KEY_BASE"], env["DB_PASSWORD"]) == ("tok-dotenv-123", "sk-456",
                                                                                "hunter2-env")
    node.stop()


def test_dotenv_sits_beside_the_config_not_in_the_working_directory(project):
    """`devnode -c sub/.lymph.yml up` from elsewhere reads sub/.env and names it so in errors."""
    sub = project.dir / "sub"
    sub.mkdir()
    (sub / ".lymph.yml").write_text("instances:\n    Web:\n        command: exec sleep 1000\n")
    (sub / ".env").write_text("GOOD=1\nBAD LINE\n")
    (project.dir / ".env").write_text("this one is not read\n")
    r = subprocess.run([str(DEVNODE), "check", "-c", "sub/.lymph.yml"], cwd=project.dir, env=base_env(),
                       capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stderr == "devnode: sub/.env:2: expected '=' after BAD, got 'L'\n"
