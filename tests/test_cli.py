"""The command line: build, verify, info, demo; JSON keys; exit codes 0/1/2; bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import sparse

from superpose import Layer, Network, load_network, save_network
from superpose.cli import main

VERIFY_KEYS = {
    "inputs_checked",
    "inputs_with_error",
    "false_positives",
    "false_negatives",
    "error_rate_upper_95",
    "by_class",
}
INFO_KEYS = {
    "layer_widths",
    "neurons",
    "relu_neurons",
    "nonzero_parameters",
    "dense_parameters",
    "description_bits",
    "features_in",
    "features_out",
    "construction",
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv, "--json")
    return code, json.loads(out), err


def assert_one_line_error(err: str, *needles: str) -> None:
    text = err.strip()
    assert text.startswith("error:"), err
    assert "\n" not in text, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in text, (needle, text)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


NAIVE_ARGS = (
    "--family",
    "and2",
    "--features",
    "40",
    "--outputs",
    "200",
    "--sparsity",
    "3",
    "--construction",
    "naive",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The issue's instance, built once by the CLI."""
    out = tmp_path_factory.mktemp("cli") / "D"
    assert main(["build", *NAIVE_ARGS, "--out", str(out)]) == 0
    return out


def test_issue_build_then_verify_exhaustive(capsys, built):
    assert (built / "network.json").is_file() and (built / "network.safetensors").is_file()
    code, report, _ = run_json(capsys, "verify", built, "--mode", "exhaustive")
    assert code == 0
    assert VERIFY_KEYS <= set(report)
    assert report["inputs_checked"] == sum(math.comb(40, k) for k in range(4)) == 10701
    assert (
        report["inputs_with_error"] == report["false_positives"] == report["false_negatives"] == 0
    )
    assert set(report["by_class"]) == {"00", "01", "11"}
    assert sum(row["checked"] for row in report["by_class"].values()) == 10701 * 200
    assert all(
        row["false_positives"] == row["false_negatives"] == 0 for row in report["by_class"].values()
    )
    assert report["error_rate_upper_95"] == pytest.approx(1 - 0.05 ** (1 / 10701))


def test_verify_human_output(capsys, built):
    code, out, _ = run(capsys, "verify", built, "--mode", "random", "--samples", "200")
    assert code == 0
    assert "200 inputs checked" in out and "no error found" in out


def test_verify_all_modes_json(capsys, built):
    code, report, _ = run_json(
        capsys, "verify", built, "--mode", "all", "--samples", "100", "--seed", "3"
    )
    assert code == 0
    assert report["inputs_checked"] == 10701 + 200
    assert set(report["by_mode"]) == {"exhaustive", "random", "targeted"}


def test_info_json(capsys, built):
    code, info, _ = run_json(capsys, "info", built)
    assert code == 0
    assert INFO_KEYS <= set(info)
    assert info["construction"] == "naive"
    assert info["layer_widths"] == [40, 200]
    assert info["neurons"] == info["relu_neurons"] == 240
    assert info["nonzero_parameters"] == 600
    assert info["dense_parameters"] == 40 * 200 + 200
    assert (info["features_in"], info["features_out"]) == (40, 200)
    assert info["description_bits"] == pytest.approx(
        load_network(built).counts()["description_bits"]
    )
    code, out, _ = run(capsys, "info", built)
    assert code == 0 and "naive" in out and "240" in out


def test_build_json_and_seed_determinism(capsys, tmp_path):
    args = (
        "build",
        "--family",
        "or2",
        "--features",
        "20",
        "--outputs",
        "30",
        "--construction",
        "naive",
        "--seed",
        "4",
    )
    code, counts, _ = run_json(capsys, *args, "--out", tmp_path / "a")
    assert code == 0
    assert counts["out"] == str(tmp_path / "a")
    assert counts["layer_widths"] == [20, 30]
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert main([*args[:-1], "5", "--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    assert snapshot(tmp_path / "a") != snapshot(tmp_path / "c")


def test_build_from_task_file_with_sparsity_override(capsys, tmp_path):
    task = tmp_path / "t.json"
    task.write_text(
        json.dumps(
            {
                "features": 6,
                "sparsity": 2,
                "gates": [{"op": "xor", "inputs": [0, 1]}, {"op": "and", "inputs": [6, 2]}],
            }
        )
    )
    code, _, _ = run(
        capsys,
        "build",
        "--task",
        task,
        "--sparsity",
        "4",
        "--construction",
        "naive",
        "--out",
        tmp_path / "n",
    )
    assert code == 0
    net = load_network(tmp_path / "n")
    assert net.task.sparsity == 4 and net.task.n_gates == 2
    code, report, _ = run_json(capsys, "verify", tmp_path / "n", "--mode", "exhaustive")
    assert code == 0 and report["inputs_checked"] == sum(math.comb(6, k) for k in range(5))


@pytest.mark.parametrize(
    "family_args",
    [
        ("--family", "permutation", "--outputs", "12"),
        (
            "--family",
            "kand",
            "--features",
            "12",
            "--outputs",
            "20",
            "--arity",
            "3",
            "--sparsity",
            "3",
        ),
        ("--family", "uand", "--features", "8"),
        ("--family", "circuit", "--features", "12", "--outputs", "12", "--depth", "3"),
        ("--family", "and2", "--features", "30", "--outputs", "40", "--influence", "uniform+star"),
    ],
)
def test_build_every_family_naive(capsys, tmp_path, family_args):
    code, _, err = run(
        capsys, "build", *family_args, "--construction", "naive", "--out", tmp_path / "n"
    )
    assert code == 0, err
    code, report, _ = run_json(capsys, "verify", tmp_path / "n", "--mode", "exhaustive")
    assert code == 0 and report["inputs_with_error"] == 0


# --- a broken network: exit 1 ---------------------------------------------------------------


def test_verify_finds_errors_exit_1(capsys, built, tmp_path):
    net = load_network(built)
    lay = net.layers[0]
    w = lay.weight.tolil(copy=True)
    a, b = (int(v) for v in net.task.operands(0))
    w[0, b] = 0.0  # gate 0 can no longer fire: false negatives on class 11
    bias = lay.bias.copy()
    bias[1] = 0.0  # gate 1 fires on one operand: false positives on class 01
    broken = Network(
        [Layer(sparse.csr_array(w), bias, "relu")],
        net.input_code,
        net.output_code,
        net.task,
        "naive",
    )
    save_network(broken, tmp_path / "broken")
    code, report, _ = run_json(capsys, "verify", tmp_path / "broken", "--mode", "exhaustive")
    assert code == 1
    assert report["inputs_with_error"] > 0
    assert report["false_negatives"] == sum(math.comb(38, k) for k in range(2))
    assert report["false_positives"] == 2 * sum(math.comb(38, k) for k in range(3))
    assert report["by_class"]["11"]["false_negatives"] == report["false_negatives"]
    assert report["by_class"]["01"]["false_positives"] == report["false_positives"]
    assert report["error_rate_upper_95"] > report["inputs_with_error"] / report["inputs_checked"]
    code, out, _ = run(
        capsys, "verify", tmp_path / "broken", "--mode", "random", "--samples", "2000"
    )
    assert code == 1 and "inputs with errors" in out


# --- bad input: exit 2, one line, nothing overwritten ------------------------------------------


BAD_TASKS = {
    "malformed.json": (
        '{"features": 4,\n "sparsity": 2,\n "gates": [}',
        ["line 3", "malformed JSON"],
    ),
    "unknown_op.json": (
        {
            "features": 4,
            "sparsity": 2,
            "gates": [{"op": "and", "inputs": [0, 1]}, {"op": "nor", "inputs": [0, 1]}],
        },
        ["gate 1", "nor"],
    ),
    "future.json": (
        {"features": 4, "sparsity": 2, "gates": [{"op": "and", "inputs": [0, 4]}]},
        ["gate 0", "4", "does not exist yet"],
    ),
    "duplicate.json": (
        {"features": 4, "sparsity": 2, "gates": [{"op": "and", "inputs": [2, 2]}]},
        ["gate 0", "twice"],
    ),
    "sparsity0.json": (
        {"features": 4, "sparsity": 0, "gates": [{"op": "and", "inputs": [0, 1]}]},
        ["sparsity"],
    ),
    "sparsity5.json": (
        {"features": 4, "sparsity": 5, "gates": [{"op": "and", "inputs": [0, 1]}]},
        ["sparsity 5", "4"],
    ),
    "arity.json": (
        {"features": 4, "sparsity": 2, "gates": [{"op": "andnot", "inputs": [0, 1, 2]}]},
        ["gate 0", "andnot"],
    ),
    "unknown_key.json": (
        {"features": 4, "sparsity": 2, "gates": [], "outputz": [0]},
        ["unknown key", "outputz"],
    ),
}


@pytest.fixture
def existing_out(tmp_path, built):
    """An --out directory that already holds a network: bad input must leave it untouched."""
    out = tmp_path / "existing"
    save_network(load_network(built), out)
    return out


@pytest.mark.parametrize("name", sorted(BAD_TASKS))
def test_bad_task_file(capsys, tmp_path, existing_out, name):
    content, needles = BAD_TASKS[name]
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    before = snapshot(existing_out)
    code, out, err = run(
        capsys, "build", "--task", path, "--construction", "naive", "--out", existing_out
    )
    assert code == 2
    assert_one_line_error(err, name, *needles)
    assert snapshot(existing_out) == before


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--family", "and3", "--features", "10", "--outputs", "5"), ["unknown family", "and3"]),
        (
            ("--family", "and2", "--features", "10", "--outputs", "5", "--construction", "magic"),
            ["unknown construction", "magic"],
        ),
        (
            ("--family", "and2", "--features", "10", "--outputs", "5", "--sparsity", "0"),
            ["--sparsity", "0"],
        ),
        (
            ("--family", "and2", "--features", "3", "--outputs", "2", "--sparsity", "4"),
            ["sparsity 4", "features 3", "(--sparsity)"],
        ),
        (("--family", "and2", "--features", "0", "--outputs", "5"), ["--features"]),
        (
            ("--family", "and2", "--features", "10", "--outputs", "5", "--influence", "fractal"),
            ["fractal"],
        ),
        (("--family", "and2", "--features", "10", "--outputs", "50"), ["distinct pairs"]),
        (
            ("--features", "10", "--outputs", "5"),
            ["exactly one of task_file or family", "--task FILE", "--family"],
        ),
        (
            ("--family", "and2", "--features", "10", "--outputs", "5", "--param", "noequals"),
            ["KEY=VALUE"],
        ),
        (
            (
                "--family",
                "and2",
                "--features",
                "10",
                "--outputs",
                "5",
                "--construction",
                "naive",
                "--param",
                "width=3",
            ),
            ["naive"],
        ),
    ],
)
def test_bad_build_options(capsys, existing_out, args, needles):
    before = snapshot(existing_out)
    code, _, err = run(capsys, "build", *args, "--out", existing_out)
    assert code == 2
    assert_one_line_error(err, *needles)
    assert snapshot(existing_out) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "--family", "and2", "--features", "abc", "--outputs", "5", "--out", "x"],
        ["build", "--family", "and2", "--features", "10", "--outputs", "5"],  # no --out
        ["verify"],  # no directory
        ["verify", "D", "--samples", "many"],
        ["frobnicate"],
        ["build", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2_without_traceback(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "Traceback" not in out + err
    assert "error" in err.lower()
    assert list(tmp_path.iterdir()) == []


def test_build_onto_a_file_is_refused(capsys, tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    code, _, err = run(capsys, "build", *NAIVE_ARGS, "--out", target)
    assert code == 2
    assert_one_line_error(err, "taken", "not a directory")
    assert target.read_text() == "keep me"


def test_module_level_imports_are_declared_dependencies():
    """A fresh 'pip install .' must be able to import every module's top-level imports."""
    import ast
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]

    def norm(requirement: str) -> str:
        name = requirement.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        return name.strip().lower().replace("_", "-")

    declared = {norm(r) for r in project["dependencies"]}
    # superpose.torch is the export package: only it may import the torch and onnx extras
    # at module level (core never imports it)
    extras = {
        norm(r) for group in ("torch", "onnx") for r in project["optional-dependencies"][group]
    }
    import importlib.metadata as md

    dist_of = {k: [norm(d) for d in v] for k, v in md.packages_distributions().items()}
    missing: list[str] = []
    for path in sorted((root / "superpose").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: lazy imports inside functions may be optional
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "superpose" or top == "__future__":
                    continue
                dists = dist_of.get(top, [top])
                export = path.relative_to(root).parts[:2] == ("superpose", "torch")
                if not any(d in declared or (export and d in extras) for d in dists):
                    missing.append(f"{path.relative_to(root)}: import {name} ({', '.join(dists)})")
    assert not missing, "undeclared dependencies:\n" + "\n".join(missing)


def test_missing_task_file(capsys, tmp_path, existing_out):
    code, _, err = run(capsys, "build", "--task", tmp_path / "nope.json", "--out", existing_out)
    assert code == 2
    assert_one_line_error(err, "nope.json")


def test_bad_verify_and_info_input(capsys, tmp_path, built):
    code, _, err = run(capsys, "verify", tmp_path / "absent")
    assert code == 2
    assert_one_line_error(err, "absent")
    code, _, err = run(capsys, "verify", built, "--mode", "brute")
    assert code == 2
    assert_one_line_error(err, "--mode", "brute")
    code, _, err = run(capsys, "verify", built, "--samples", "-1")
    assert code == 2
    assert_one_line_error(err, "--samples")
    code, _, err = run(capsys, "verify", built, "--mode", "exhaustive", "--max-exhaustive", "1000")
    assert code == 2
    assert_one_line_error(err, "10,701", "1,000")
    code, _, err = run(capsys, "info", tmp_path)
    assert code == 2
    assert_one_line_error(err, "network.json")


def test_corrupted_network_directory(capsys, tmp_path, built):
    d = tmp_path / "corrupt"
    save_network(load_network(built), d)
    blob = bytearray((d / "network.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (d / "network.safetensors").write_bytes(bytes(blob))
    for command in ("verify", "info"):
        code, _, err = run(capsys, command, d)
        assert code == 2
        assert_one_line_error(err, "checksum mismatch")


def test_console_script_exit_code(tmp_path):
    script = Path(sys.executable).parent / "superpose"
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    proc = subprocess.run(
        [str(script), "verify", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "absent")
    assert proc.stdout == ""


# --- the demo ------------------------------------------------------------------------------------


def test_demo_quick(capsys, tmp_path):
    out = tmp_path / "demo"
    code, text, err = run(capsys, "demo", "--quick", "--out", out)
    assert code == 0, err
    for name in ("report.md", "demo.png", "results.json"):
        assert (out / name).is_file(), name
    assert (out / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "results.json").read_text())
    names = [row["construction"] for row in saved["rows"]]
    assert "naive" in names
    for row in saved["rows"]:
        assert row["inputs_checked"] > 0
        assert row["inputs_with_error"] == 0, row
        assert row["neurons"] == sum(row["layer_widths"])
        assert row["check"] in ("exact", "sampled")
        if row["check"] == "sampled":
            assert 0 < row["error_rate_upper_95"] < 1
    report = (out / "report.md").read_text()
    assert "demo.png" in report
    for name in names:
        assert name in report and name in text  # the report and the printed table


def test_a_deep_task_builds_with_the_fewest_planned_neurons_by_default(capsys, tmp_path):
    # The default plans 'stream' and 'circuit' and keeps the fewer neurons; on this 16-input
    # task both plan more than the explicit network's m + m' = 28, so that is what is built
    # (with its carries: a deep explicit network copies what later levels read).
    task = Path(__file__).parent.parent / "examples" / "feature-hierarchy.json"
    code, _, err = run(capsys, "build", "--task", str(task), "--out", str(tmp_path / "n"))
    assert code == 0, err
    net = load_network(tmp_path / "n")
    assert net.construction == "naive"
    assert "not fewer than the explicit network's m + m' = 28" in net.extras["fallback"]
    code, _, err = run(capsys, "verify", str(tmp_path / "n"), "--mode", "exhaustive")
    assert code == 0, err
    # --construction forces one (a plan that does not pay still falls back unless told not to).
    for forced, extra in (("circuit", ()), ("stream", ("--no-fallback",))):
        out = tmp_path / forced
        args = ("build", "--task", str(task), "--construction", forced, *extra)
        code, _, err = run(capsys, *args, "--out", str(out))
        assert code == 0, err
        assert load_network(out).construction == forced


def test_fallback_is_reported_by_build(capsys, tmp_path):
    args = ("build", "--family", "uand", "--features", "20", "--sparsity", "5")
    code, out, err = run(capsys, *args, "--out", str(tmp_path / "u"))
    assert code == 0, err
    assert "fallback:" in err and "m + m' = 210" in " ".join(err.split())
    assert load_network(tmp_path / "u").counts()["neurons"] == 210


def test_the_console_script_entry_point_is_the_launcher():
    """pyproject's [project.scripts] names superpose._launch:main (guard, then the CLI)."""
    import tomllib

    from superpose import _launch

    data = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert data["project"]["scripts"]["superpose"] == "superpose._launch:main"
    assert callable(_launch.main)


def test_info_shows_cleanup_blocks_with_their_copies(tmp_path, capsys):
    """A stream network with a clean-up: ``info`` names the block's kind and its copy units,
    the numbers the network records (and the JSON carries)."""
    import json

    from superpose import build, families, save_network
    from superpose.seeds import Seeds

    task = families.generate("circuit", Seeds(0).rng("task"), features=60, outputs=80, depth=4)
    net = build(task, "stream", seed=1, units="exact", cleanup=(2,), fallback=False)
    save_network(net, tmp_path / "n")
    blocks = net.extras["residual"]["blocks"]
    clean = next(b for b in blocks if b.get("kind") == "cleanup")
    assert main(["info", str(tmp_path / "n")]) == 0
    out = capsys.readouterr().out
    rows = [
        line.split() for line in out.splitlines() if line.split()[:1] in (["block"], ["cleanup"])
    ]
    assert [r[0] for r in rows] == [b.get("kind", "block") for b in blocks]
    # cleanup row: kind, level, gates -, bound -, copies, ..., hidden, params, error
    row = rows[[r[0] for r in rows].index("cleanup")]
    assert row[1:5] == [str(clean["level"]), "-", "-", f"{clean['copy_units']:,}"]
    assert row[-3:-1] == [f"{clean['hidden_units']:,}", f"{clean['nonzero_parameters']:,}"]
    assert main(["info", str(tmp_path / "n"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["residual"]["blocks"] == json.loads(json.dumps(blocks))
