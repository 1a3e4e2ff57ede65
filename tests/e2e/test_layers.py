"""The folder rule of issue 16: scripts/check_layers.sh (`make layers`, the first step of
`make test`) passes on the tree and names the file, line and include of every include that
goes the wrong way."""
import shutil
import subprocess

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "check_layers.sh"
LAYERED = ["common", "sockets", "node", "lib", "tail", "tui", "cli"]


def run_check(root):
    return subprocess.run(["sh", str(SCRIPT), str(root)], capture_output=True, text=True, timeout=60)


def copy_tree(tmp_path):
    for d in LAYERED:
        shutil.copytree(ROOT / d, tmp_path / d)
    return tmp_path


def test_the_tree_keeps_the_rule():
    r = run_check(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "layers: ok" in r.stdout


def test_each_wrong_way_include_is_one_line_naming_file_line_and_include(tmp_path):
    root = copy_tree(tmp_path)
    (root / "node" / "bad.c").write_text('#include "node/node.h"\n\n#include "tui/tui.h"\n')
    (root / "tail" / "bad.h").write_text('/* x */\n#  include "node/loghub.h"\n')
    (root / "tui" / "bad.c").write_text('#include "../node/node.h"\n#include "tail/linebuf.h"\n')
    (root / "sockets" / "bad.c").write_text('#include "node/supervisor.h"\n')
    (root / "lib" / "bad.c").write_text('#include "cli/cli.h"\n#include "common/xalloc.h"\n')
    r = run_check(root)
    assert r.returncode == 1, r.stdout
    lines = sorted(line for line in r.stdout.splitlines() if line.startswith("check_layers:"))
    assert lines == sorted([
        "check_layers: lib/bad.c:1: includes cli/cli.h, but lib/ may include only common/, proto/, lib/",
        "check_layers: lib/bad.c:2: includes common/xalloc.h, which lib/ may not use",
        "check_layers: node/bad.c:3: includes tui/tui.h, but node/ may include only "
        "common/, proto/, config/, sockets/, node/",
        "check_layers: sockets/bad.c:1: includes node/supervisor.h, but sockets/ may include only "
        "common/, proto/, config/, sockets/",
        "check_layers: tail/bad.h:2: includes node/loghub.h, but tail/ may include only common/, proto/, tail/",
        "check_layers: tui/bad.c:1: includes node/node.h, but tui/ may include only "
        "common/, proto/, tail/, tui/",
    ]), r.stdout
    assert "layers: ok" not in r.stdout
