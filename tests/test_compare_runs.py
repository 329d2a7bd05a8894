"""tools/compare_runs.py: equal folders pass, one changed number fails and is named."""

import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("compare_runs", ROOT / "tools" / "compare_runs.py")
compare_runs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_runs)


def test_compare_runs(tmp_path, capsys):
    rec = {"config": {"seeds": 2}, "numbers": {"acc": [0.5, float("nan")]}, "headline": {}}
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.json").write_text(json.dumps(rec))
    assert compare_runs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    rec["numbers"]["acc"][0] = 0.5000001
    (tmp_path / "b" / "x.json").write_text(json.dumps(rec))
    assert compare_runs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "numbers.acc[0]: 0.5 != 0.5000001" in capsys.readouterr().out
