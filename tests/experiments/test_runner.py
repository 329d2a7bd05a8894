"""Runner and CLI: overrides, show, report regeneration, atomic outputs, resume, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from jreg import cli, experiments
from jreg.core import runtime
from jreg.experiments import configs, kit, runner

FAKE = textwrap.dedent(
    '''
    """A tiny experiment for runner tests: a one-config sweep of a quadratic."""
    import jax.numpy as jnp, numpy as np, optax
    from jreg.core import streams, train
    from jreg.experiments import kit

    DESCRIPTION = "fake: GD on (w - 3)^2."

    def get_config(quick=False):
        return {"seeds": 2, "lr": 0.1, "num_steps": 20 if quick else 40, "label": "a|b",
                "work": 0}

    def compute(config, run=kit.QUIET):
        opt = optax.sgd(config["lr"])
        def step(s, b, k, hp):
            g = 2 * (s["w"] - 3.0)
            u, o = opt.update(g, s["o"])
            if config["work"]:  # slow steps (no effect on w) for the interrupt tests
                import jax
                m = jnp.full((256, 256), 1.0 / 256)
                x = jax.lax.fori_loop(0, config["work"], lambda i, x: jnp.tanh(m @ x), m)
                u = u + 0.0 * jnp.sum(x)
            return {"w": s["w"] + u, "o": o}, {}
        task = train.Task(lambda k, hp: {"w": jnp.zeros(()), "o": opt.init(jnp.zeros(()))},
                          step, lambda s, d, hp: {"w": s["w"]})
        res = run.sweep(task, {}, stream=streams.generated(lambda k, t: {}),
                        seeds=config["seeds"], num_steps=config["num_steps"], eval_every=1,
                        segments=config["num_steps"])
        w = res.history["w"]
        return {"w": w, "headline": {"final |w|": float(w[0, 0, -1]), "label": config["label"]},
                "notes": [f"w ends at {w[0, 0, -1]:.3f}"]}

    def figure(numbers, config):
        from jreg.experiments import plotting
        fig, ax = plotting.subplots(figsize=(3, 2))
        ax.plot(np.asarray(numbers["w"])[0, 0])
        return fig
    '''
)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Register the fake experiment as 'fake'."""
    import types

    module = types.ModuleType("fake")
    exec(FAKE, module.__dict__)
    monkeypatch.setattr(experiments, "NAMES", experiments.NAMES + ("fake",))
    monkeypatch.setattr(experiments, "available", lambda: experiments.NAMES)
    real_get = experiments.get
    monkeypatch.setattr(experiments, "get", lambda n: module if n == "fake" else real_get(n))
    return module


def test_overrides_are_type_checked_and_recorded(fake, tmp_path):
    rec = runner.run_experiment(
        "fake", quick=True, out=str(tmp_path), progress=False, overrides=["lr=0.2", "seeds=1"]
    )
    assert rec["config"]["lr"] == 0.2 and rec["overrides"] == {"lr": 0.2, "seeds": 1}
    with pytest.raises(ValueError, match="unknown config key 'lrr'; valid keys: label, lr"):
        configs.apply_overrides(fake.get_config(), ["lrr=0.1"])
    with pytest.raises(ValueError, match="'lr' takes a float"):
        configs.apply_overrides(fake.get_config(), ["lr=fast"])
    with pytest.raises(ValueError, match="'seeds' takes a int"):
        configs.apply_overrides(fake.get_config(), ["seeds=1.5"])


def test_show_prints_the_config(fake, capsys):
    assert cli.main(["show", "fake", "--quick"]) == 0
    assert "num_steps = 20" in capsys.readouterr().out


def test_report_is_regenerated_not_appended(fake, tmp_path):
    out = str(tmp_path)
    for _ in range(2):
        runner.run_experiment("fake", quick=True, out=out, progress=False)
    runner.run_experiment("fake", out=out, progress=False)
    report = open(os.path.join(out, "report.md")).read()
    assert report.count("## fake-quick") == 1 and report.count("## fake\n") == 1
    assert "a\\|b" in report  # a '|' in a value does not break the table
    assert sorted(f for f in os.listdir(out) if not f.startswith(".")) == [
        "fake-quick.json",
        "fake-quick.png",
        "fake.json",
        "fake.png",
        "report.md",
    ]
    rec = json.load(open(os.path.join(out, "fake.json")))
    assert rec["jreg_version"] and "git_commit" in rec


def test_one_seed_shows_no_spread():
    assert kit.mean_std([0.5]) == "0.5000"
    assert kit.mean_std([0.5, 0.7]) == "0.6000 ± 0.1000"


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "dropout", "--seeds", "0"], "positive integer"),
        (["run", "dropout", "--seeds", "-1"], "positive integer"),
        (["run", "dropout", "--seeds", "two"], "positive integer"),
        (["run", "dropout", "--out", ""], "empty string"),
        (["reproduce", "--only"], "expected at least one argument"),
        (["run", "dropout", "--set", "nope=1"], "unknown config key 'nope'"),
        # issue 18: every config value is checked before training, in the config's terms
        (
            ["run", "dropout", "--quick", "--set", "seeds=0"],
            "seeds must be a positive integer, got 0",
        ),
        (["run", "dropout", "--quick", "--set", "num_epochs=0"], "num_epochs must be a positive"),
        (
            ["run", "dropout", "--quick", "--set", "eval_every=7"],
            "eval_every=7 must divide num_epochs=300 (one evaluation every eval_every epochs); "
            "e.g. eval_every=6 or 10",
        ),
        (
            ["run", "dropout", "--quick", "--set", "batch_size=1000"],
            "batch_size=1000 exceeds n_train=300",
        ),
        (["run", "dropout", "--quick", "--set", "batch_size=0"], "batch_size must be a positive"),
        (
            ["run", "double_descent", "--quick", "--set", "widths=(3,)"],
            "widths takes 3 values (smallest, largest, count)",
        ),
        (
            ["run", "dropout", "--quick", "--set", "widths=(3, 96, 2)"],
            "widths must start with the input size 2 and end with the output size 2",
        ),
        (["run", "dropout", "--quick", "--set", "lr=(0.1,)"], "lr takes 3 values (lr0, a, tau)"),
        (["run", "drop_path", "--quick", "--set", "rates=(0.1, 1.0)"], "rates must lie in [0, 1)"),
        (
            ["run", "dropout", "--quick", "--set", "seed=1099511627776"],
            "seed must be an int in [0, 2**32), got 1099511627776",
        ),
        (
            ["run", "drop_path", "--quick", "--set", "data_seed=-1"],
            "data_seed must be an int in [0, 2**32)",
        ),
        (
            ["run", "dropout", "--quick", "--seeds", "2", "--set", "seeds=4"],
            "--seeds 2 and --set seeds=4 both set the number of seeds",
        ),
        (["run", "dropout", "--set", "lr=(0.1, 1.0, 5.0)", "--set", "lr=(0.1, 1.0, 5.0)"], "twice"),
        (
            ["reproduce", "--quick", "--only", "dropout", "weight_decay", "dropout"],
            "--only lists 'dropout' more than once",
        ),
    ],
)
def test_bad_cli_input_is_a_one_line_error(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # one line, after the subcommand's own usage (not the top-level `jreg {list,...}`)
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"jreg {argv[0]}: error: ") and match in last
    assert err.startswith(f"usage: jreg {argv[0]} ")


def test_every_default_config_passes_the_checks():
    for name in experiments.available():
        for quick in (True, False):
            runner.prepare_config(name, quick=quick)


def test_outputs_respect_the_umask_and_stale_tmp_files_are_removed(fake, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = out / ".tmp-999999999-fake.json"  # a pid above Linux's pid_max: a killed run
    dead.write_text("")
    old = out / ".tmp-abc123fake.png"  # untagged (older jreg), an hour old
    old.write_text("")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    live = out / f".tmp-{os.getppid()}-fake.png"  # a running process's file is kept
    live.write_text("")
    mask = os.umask(0o022)
    try:
        runner.run_experiment("fake", quick=True, out=str(out), progress=False)
        modes = {f.name: f.stat().st_mode & 0o777 for f in out.iterdir() if f.is_file()}
        os.umask(0o077)
        runner.write_text(str(out / "private.txt"), "x")
    finally:
        os.umask(mask)
    assert modes["fake-quick.json"] == modes["fake-quick.png"] == modes["report.md"] == 0o644
    assert (out / "private.txt").stat().st_mode & 0o777 == 0o600
    assert not dead.exists() and not old.exists() and live.exists()


def test_numbers_are_written_before_the_figure_and_failures_are_one_line(
    fake, tmp_path, monkeypatch, capsys
):
    import errno

    out = tmp_path / "out"
    real_replace = os.replace

    def full_disk(src, dst):
        if dst.endswith(".png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(runner.os, "replace", full_disk)
    assert cli.main(["run", "fake", "--quick", "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"jreg run: error: the figure of fake failed (could not write {out}/fake-quick.png: "
        f"No space left on device.); the numbers are in {out}/fake-quick.json."
    ]
    assert json.loads((out / "fake-quick.json").read_text())["headline"]["final |w|"] > 2.9
    assert "fake-quick" in (out / "report.md").read_text()
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]
    monkeypatch.setattr(runner.os, "replace", real_replace)

    def broken(numbers, config):
        raise KeyError("w_curve")

    monkeypatch.setattr(fake, "figure", broken)
    with pytest.raises(runner.WriteError, match=r"figure of fake failed \(KeyError: 'w_curve'\)"):
        runner.run_experiment("fake", out=str(out), progress=False)
    assert (out / "fake.json").exists() and not (out / "fake.png").exists()


def test_report_cells_and_notes_stay_on_one_line(fake, tmp_path):
    runner.run_experiment(
        "fake", quick=True, out=str(tmp_path), progress=False, overrides={"label": "two\nlines"}
    )
    report = (tmp_path / "report.md").read_text()
    assert "| label | two lines |" in report


def test_one_seed_label_smoothing_claims_no_difference():
    from jreg.experiments.classic import label_smoothing

    config = {"seed": 0, "bootstrap": 50, "compare_epsilons": (0.01, 0.015)}
    eps = np.array([0.0, 0.01, 0.015])
    ece = np.array([[0.05], [0.0100], [0.0147]])  # (H, S=1)
    note = label_smoothing._compare_note(label_smoothing._bootstrap_argmin(ece, eps, config), 1, 50)
    assert "−0.0047 on that seed" not in note and "-0.0047 on that seed" in note
    assert "no claim of a difference" in note and "±" not in note and "measured" not in note
    ece2 = np.array([[0.05, 0.06], [0.0100, 0.0110], [0.0147, 0.0160]])
    note2 = label_smoothing._compare_note(
        label_smoothing._bootstrap_argmin(ece2, eps, config), 2, 50
    )
    assert "a measured difference." in note2


def test_out_that_is_a_file_or_read_only_is_refused_before_training(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit):
        cli.main(["run", "dropout", "--out", str(f)])
    assert "is a file" in capsys.readouterr().err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root ignores permissions
        pytest.skip("running as root: a read-only folder is still writable")
    with pytest.raises(SystemExit):
        cli.main(["run", "dropout", "--out", str(ro)])
    assert "not writable" in capsys.readouterr().err


CHILD = textwrap.dedent(
    """
    import sys, types
    from jreg import cli, experiments
    module = types.ModuleType("fake")
    exec(open(sys.argv[1]).read(), module.__dict__)
    experiments.NAMES = experiments.NAMES + ("fake",)
    experiments.available = lambda: experiments.NAMES
    get = experiments.get
    experiments.get = lambda n: module if n == "fake" else get(n)
    sys.exit(cli.main(sys.argv[2:]))
    """
)


def _child(tmp_path, *args):
    src = tmp_path / "fake_src.py"
    src.write_text(FAKE)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(src), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(folder):
    deadline = time.time() + 120
    while time.time() < deadline and not any(folder.glob("*/*/_CHECKPOINT_METADATA")):
        time.sleep(0.1)
    assert any(folder.glob("*/*/_CHECKPOINT_METADATA")), f"no checkpoint in {folder} after 120 s"
    time.sleep(0.5)


def test_ctrl_c_exits_130_with_one_line_and_outputs_stay_valid(tmp_path):
    out = tmp_path / "out"
    first = _child(tmp_path, "run", "fake", "--out", str(out), "--no-progress")
    assert first.wait(timeout=120) == 0
    before = (out / "fake.json").read_text()
    # A run that cannot finish on its own (100,000 one-step segments, a checkpoint every 5),
    # so the interrupt lands mid-run however slow or loaded the machine is.
    endless = ("--no-progress", "--set", "num_steps=100000")
    proc = _child(tmp_path, "run", "fake", "--out", str(out), *endless)
    _wait_for_checkpoint(out / ".checkpoints" / "fake")
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "interrupted: finished nothing; not finished fake" in err
    assert "lists the finished ones" not in err  # nothing finished in this run (issue 18)
    assert (out / "fake.json").read_text() == before  # the old complete file
    for f in out.glob("*.json"):
        json.loads(f.read_text())


def test_resume_continues_from_checkpoints(tmp_path):
    out = tmp_path / "out"
    slow = ("--no-progress", "--set", "work=300")
    proc = _child(tmp_path, "run", "fake", "--out", str(out), *slow)
    ckpt = out / ".checkpoints" / "fake"
    _wait_for_checkpoint(ckpt)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "fake.json").exists()
    # Another config is refused in one line naming the entry (never mixed into the run).
    other = _child(tmp_path, "run", "fake", "--out", str(out), "--no-progress", "--resume")
    _, err = other.communicate(timeout=120)
    assert other.returncode == 2, err
    assert "Traceback" not in err and "work: 300 then, 0 now" in err
    resumed = _child(tmp_path, "run", "fake", "--out", str(out), *slow, "--resume")
    assert resumed.wait(timeout=120) == 0
    fresh = _child(tmp_path, "run", "fake", "--out", str(tmp_path / "o2"), *slow)
    assert fresh.wait(timeout=120) == 0
    a = json.loads((out / "fake.json").read_text())["numbers"]
    b = json.loads((tmp_path / "o2" / "fake.json").read_text())["numbers"]
    assert a == b
    assert not ckpt.exists()  # removed after a completed run
    assert not (out / ".checkpoints").exists()  # and the emptied parent too


def test_release_memory_drops_compiled_sweeps():
    import jax.numpy as jnp
    import optax

    from jreg import tasks
    from jreg.core import streams, train
    from jreg.nn import nets

    x = jnp.ones((8, 2), jnp.float32)
    y = jnp.zeros((8,), jnp.int32)
    task = tasks.supervised(nets.mlp((2, 3, 2)), optimizer=optax.sgd(0.1))
    kw = dict(stream=streams.epochs(4), seeds=1, num_steps=2, eval_every=2, progress=False)
    train.sweep(task, tasks.split_data(x, y, x, y), **kw)
    assert train.compiled_programs.cache_info().currsize >= 1
    runtime.release_memory()
    assert train.compiled_programs.cache_info().currsize == 0
    before = train.compiled_programs.cache_info().misses
    train.sweep(task, tasks.split_data(x, y, x, y), **kw)  # still works: compiles again
    assert train.compiled_programs.cache_info().misses == before + 1


def test_resume_skips_a_finished_experiment_with_the_same_config(fake, tmp_path):
    first = runner.run_experiment("fake", quick=True, out=str(tmp_path), progress=False)
    text = (tmp_path / "fake-quick.json").read_text()
    again = runner.run_experiment(
        "fake", quick=True, out=str(tmp_path), progress=False, resume=True
    )
    assert again.get("skipped") is True and again["numbers"] == first["numbers"]
    assert (tmp_path / "fake-quick.json").read_text() == text  # not rewritten
    assert first["peak_rss_mib"] is None or first["peak_rss_mib"] > 10
    # another config is not "finished": it runs
    other = runner.run_experiment(
        "fake", quick=True, out=str(tmp_path), progress=False, resume=True, overrides=["lr=0.2"]
    )
    assert "skipped" not in other and other["numbers"] != first["numbers"]
