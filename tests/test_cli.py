import pytest

from jreg import cli, experiments
from jreg.core import runtime


def test_list_prints_every_experiment_once(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(experiments.available())
    # Every experiment but the classic five carries the --all tag.
    tagged = {line.split()[0] for line in lines if line.endswith("[--all]")}
    assert tagged == set(experiments.available()) - set(experiments.CLASSIC)


def test_groups_partition_the_registry():
    assert len(experiments.CLASSIC) == 5
    groups = [experiments.CLASSIC, experiments.IMPLICIT, experiments.APPLICATIONS]
    assert sum(len(g) for g in groups) == len(set(experiments.NAMES)) == len(experiments.NAMES)
    assert set().union(*groups) == set(experiments.NAMES)


@pytest.mark.parametrize("argv", [["run", "dropuot"], ["reproduce", "--only", "dropout", "nope"]])
def test_unknown_names_exit_with_the_list(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "available: augmentation" in capsys.readouterr().err


def test_all_and_only_are_exclusive(capsys):
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--all", "--only", "dropout"])
    assert "not allowed with" in capsys.readouterr().err


def test_no_collective_timeout_flag_is_set():
    """Nothing waits at a collective any more (tests/test_sharding.py), so no timeout."""
    env = {"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}
    n = runtime.use_all_cpu_cores(env)
    assert env["XLA_FLAGS"] == (
        f"--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count={n}"
    )


def test_unwritable_cache_dir_is_one_line(tmp_path):
    import subprocess
    import sys

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = dict(__import__("os").environ, JREG_CACHE_DIR=str(blocker / "cache"))
    out = subprocess.run(
        [sys.executable, "-m", "jreg", "run", "dropout", "--quick", "--out", str(tmp_path / "o")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert "compilation cache folder" in out.stderr and "JREG_CACHE_DIR" in out.stderr


def test_list_into_a_closed_pipe_is_quiet():
    """`jreg list | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "jreg", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    proc.stdout.close()  # the reader is gone before the first line (like `head` exiting)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
