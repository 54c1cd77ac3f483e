"""`fairtune monitor` end to end: alerts on a regression, clean logs, incremental runs, sources, bad input."""

from __future__ import annotations

import json
import sqlite3

import duckdb
import pandas as pd
import pytest
from test_monitor_logs import day_rows, write_days, write_jsonl

from fairtune.cli import main
from fairtune.monitor import FairnessMonitor, MonitorConfig, run_monitor
from fairtune.monitor.state import STATE_NAME

EO = "equalized_odds_difference<=0.1"


def _monitor(tmp_path, logs, out="out", *extra):
    rc = main(["monitor", "--logs", str(logs), "--output", str(tmp_path / out), "--no-plots", *extra])
    return rc, json.loads((tmp_path / out / "monitor.json").read_text())


def _alert_windows(report, kind=None):
    return sorted({a["window"] for a in report["alerts"] if kind is None or a["kind"] == kind})


def test_regression_from_day_5_alerts_on_day_5_and_not_before(tmp_path, capsys):
    write_days(tmp_path / "logs", range(1, 9), regression_from=5)
    rc, report = _monitor(tmp_path, tmp_path / "logs" / "*.jsonl", "out", "--alert", EO)
    assert rc == 3
    assert _alert_windows(report, "constraint") == ["2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08"]
    assert all(not w["alerts"] for w in report["windows"][:4])  # no alert of any kind before day 5
    day5 = report["windows"][4]
    assert (
        day5["metrics"]["equalized_odds_difference"]
        > 0.1
        >= report["windows"][3]["metrics"]["equalized_odds_difference"]
    )
    lo, hi = day5["intervals"]["equalized_odds_difference"]
    assert lo <= day5["metrics"]["equalized_odds_difference"] <= hi
    assert day5["per_group"]["female"]["count"] + day5["per_group"]["male"]["count"] == day5["rows"] == 2000
    assert "ALERT [constraint] 2024-01-05" in capsys.readouterr().out


def test_clean_logs_exit_0_without_alerts(tmp_path):
    write_days(tmp_path / "logs", range(1, 9))
    rc, report = _monitor(tmp_path, tmp_path / "logs" / "*.jsonl", "out", "--alert", EO)
    assert rc == 0
    assert report["alerts"] == [] and report["alerts_firing"] == 0
    assert report["rows_total"] == 8 * 2000 and len(report["windows"]) == 8


def test_second_run_reads_only_appended_rows(tmp_path):
    logs = tmp_path / "logs"
    write_days(logs, range(1, 5), regression_from=5)
    day5 = day_rows(5, bias=0.3)
    write_jsonl(logs / "day05.jsonl", day5[:700])
    rc, first = _monitor(tmp_path, logs / "*.jsonl", "out", "--alert", EO)
    assert first["rows_processed"] == 4 * 2000 + 700

    write_jsonl(logs / "day05.jsonl", day5)  # the rest of day 5 arrives, then days 6-7
    write_days(logs, range(6, 8), regression_from=5)
    rc, second = _monitor(tmp_path, logs / "*.jsonl", "out", "--alert", EO)
    assert second["rows_processed"] == 1300 + 2 * 2000
    assert second["rows_total"] == 7 * 2000
    assert [w["updated"] for w in second["windows"]] == [False] * 4 + [True] * 3
    assert rc == 3

    # the same result as one run over all the logs
    rc_all, fresh = _monitor(tmp_path, logs / "*.jsonl", "fresh", "--alert", EO)
    for a, b in zip(second["windows"], fresh["windows"]):
        assert a["rows"] == b["rows"] and a["per_group"].keys() == b["per_group"].keys()
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-12)

    # nothing new: nothing read, and alerts already reported do not set the exit code again
    rc3, third = _monitor(tmp_path, logs / "*.jsonl", "out", "--alert", EO)
    assert third["rows_processed"] == 0 and rc3 == 0
    assert third["alerts"] and not any(a["new"] for a in third["alerts"])


def test_card_promise_alerts_only_when_significantly_worse(tmp_path):
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    write_days(tmp_path / "logs", range(1, 9), regression_from=5)
    rc, plain = _monitor(tmp_path, tmp_path / "logs" / "*.jsonl", "plain")
    clean = plain["windows"][:4]
    lows = [w["intervals"]["equalized_odds_difference"][0] for w in clean]
    promise = max(lows) + 1e-4  # inside every clean window's interval, yet below some clean window's value
    assert any(w["metrics"]["equalized_odds_difference"] > promise for w in clean)

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    data = ModelCardData(
        model_name="m",
        eval_results=[
            EvalResult(
                task_type="text-classification",
                dataset_type="custom",
                dataset_name="test",
                metric_type="equalized_odds_difference",
                metric_value=promise,
            ),
            EvalResult(
                task_type="text-classification",
                dataset_type="custom",
                dataset_name="test",
                metric_type="f1",
                metric_value=0.9,
                metric_args={"average": "macro"},
            ),
        ],
    )
    ModelCard.from_template(data).save(model_dir / "README.md")
    rc, report = _monitor(
        tmp_path, tmp_path / "logs" / "*.jsonl", "out", "--model-dir", str(model_dir), "--probe-size", "0"
    )
    assert report["promises"]["equalized_odds_difference"] == pytest.approx(promise)
    assert report["promises"]["macro_f1"] == 0.9  # type f1 + average macro is the card's macro_f1
    promised = [a for a in report["alerts"] if a["kind"] == "promise" and a["metric"] == "equalized_odds_difference"]
    assert sorted(a["window"] for a in promised) == ["2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08"]
    assert all(a["interval"][0] > promise for a in promised)
    assert rc == 3


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    write_jsonl(tmp_path / "logs" / "a.jsonl", [{"timestamp": "2024-01-01", "prob": 0.3, "group": "f"}])
    rc = main(["monitor", "--logs", str(tmp_path / "logs" / "a.jsonl"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "a.jsonl" in err and "'score'" in err and "--score-column" in err

    rows = [{"timestamp": "2024-01-01", "prediction": p, "group": "f"} for p in (0, 1, 2)]
    write_jsonl(tmp_path / "logs" / "b.jsonl", rows)
    rc = main(["monitor", "--logs", str(tmp_path / "logs" / "b.jsonl"), "--output", str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert rc == 2 and "b.jsonl" in err and "'prediction'" in err and "'2'" in err

    rc = main(["monitor", "--logs", str(tmp_path / "nothing" / "*.csv"), "--output", str(tmp_path / "out3")])
    assert rc == 2 and "no file matches" in capsys.readouterr().err

    rc = main(
        [
            "monitor",
            "--logs",
            str(tmp_path / "logs" / "b.jsonl"),
            "--output",
            str(tmp_path / "o4"),
            "--alert",
            "made_up_metric<=1",
        ]
    )
    assert rc == 2 and "made_up_metric" in capsys.readouterr().err


def test_other_settings_on_the_same_state_are_refused(tmp_path, capsys):
    write_days(tmp_path / "logs", range(1, 3))
    assert _monitor(tmp_path, tmp_path / "logs" / "*.jsonl")[0] == 0
    rc = main(
        ["monitor", "--logs", str(tmp_path / "logs" / "*.jsonl"), "--output", str(tmp_path / "out"), "--window", "6h"]
    )
    assert rc == 2 and "window '1d' -> '6h'" in capsys.readouterr().err


def test_groups_derived_from_text(tmp_path):
    write_days(tmp_path / "logs", range(1, 7), regression_from=4, group=False, text=True)
    rc, report = _monitor(tmp_path, tmp_path / "logs" / "*.jsonl", "out", "--alert", EO)
    assert report["groups"] == ["text"]
    assert any("group_from_lexicon" in n for n in report["notes"])
    assert set(report["windows"][0]["per_group"]) == {"female", "male"}
    assert _alert_windows(report, "constraint") == ["2024-01-04", "2024-01-05", "2024-01-06"]
    assert rc == 3


def test_drift_on_a_shifted_group_mix_base_rate_and_scores(tmp_path):
    logs = tmp_path / "logs"
    write_days(logs, range(1, 4))
    write_jsonl(logs / "day04.jsonl", day_rows(4, female_share=0.9))
    write_jsonl(logs / "day05.jsonl", day_rows(5, female_base_rate=0.9))
    rc, report = _monitor(tmp_path, logs / "*.jsonl", "out")
    windows = {w["window"]: w for w in report["windows"]}
    assert windows["2024-01-01"]["is_reference"]
    mix = windows["2024-01-04"]["drift"]["group_mix"]
    assert mix["drift"] and mix["psi"] > 0.25 and mix["p_value"] < 1e-6
    assert mix["window"]["female"] == pytest.approx(0.9, abs=0.03)
    base = windows["2024-01-05"]["drift"]["base_rate"]
    assert base["female"]["drift"] and not base["male"]["drift"]
    score = windows["2024-01-05"]["drift"]["score"]["female"]  # more positives: women's scores shift up
    assert score["drift"] and score["ks"] > 0.2 and score["window_mean"] > score["reference_mean"]
    assert not any(w["alerts"] for w in report["windows"][:3])
    drifts = {(a["window"], a["metric"]) for a in report["alerts"] if a["kind"] == "drift"}
    assert ("2024-01-04", "group_mix_psi") in drifts and ("2024-01-05", "base_rate_psi") in drifts
    assert rc == 3


def test_reference_file_replaces_the_first_window(tmp_path):
    write_days(tmp_path / "logs", range(1, 4))
    ref = write_jsonl(tmp_path / "test_split.jsonl", day_rows(30, female_share=0.9))
    rc, report = _monitor(tmp_path, tmp_path / "logs" / "*.jsonl", "out", "--reference", str(ref))
    assert report["reference"]["kind"] == "file" and report["reference"]["rows"] == 2000
    assert all(w["drift"]["group_mix"]["drift"] for w in report["windows"])  # every window differs from it
    assert rc == 3


def test_small_windows_are_flagged_and_do_not_alert(tmp_path):
    logs = tmp_path / "logs"
    write_days(logs, range(1, 3))
    write_jsonl(logs / "day03.jsonl", day_rows(3, n=400, bias=0.3))
    rc, report = _monitor(tmp_path, logs / "*.jsonl", "out", "--alert", EO)
    small = report["windows"][2]
    assert small["small"] and small["metrics"]["equalized_odds_difference"] > 0.1
    assert small["alerts"] and all(a["suppressed"] for a in small["alerts"])
    assert rc == 0


def test_small_groups_are_left_out_of_the_gaps(tmp_path):
    rows = day_rows(1) + [{"timestamp": "2024-01-01T12:00:00", "score": 0.99, "group": "tiny", "label": 0}] * 20
    write_jsonl(tmp_path / "logs" / "day01.jsonl", rows)
    _, report = _monitor(tmp_path, tmp_path / "logs" / "day01.jsonl")
    w = report["windows"][0]
    assert w["small_groups"] == ["tiny"] and not w["per_group"]["tiny"]["in_gaps"]
    assert w["per_group"]["tiny"]["selection_rate"] == 1.0
    assert w["metrics"]["demographic_parity_difference"] < 0.2  # 'tiny' (rate 1.0) would make it >= 0.5


def test_row_count_windows_continue_across_runs(tmp_path):
    logs = tmp_path / "logs"
    write_jsonl(logs / "a.jsonl", day_rows(1, n=2500))
    _, first = _monitor(tmp_path, logs / "*.jsonl", "out", "--window", "1000")
    assert [w["rows"] for w in first["windows"]] == [1000, 1000, 500]
    write_jsonl(logs / "b.jsonl", day_rows(2, n=1000))
    _, second = _monitor(tmp_path, logs / "*.jsonl", "out", "--window", "1000")
    assert [w["rows"] for w in second["windows"]] == [1000, 1000, 1000, 500]
    assert [w["window"] for w in second["windows"]][-1] == "rows 3000-3999"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_logs(tmp_path, fmt):
    frame = pd.DataFrame(day_rows(1, n=1000) + day_rows(2, n=1000, bias=0.3))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    path = tmp_path / f"logs.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    rc, report = _monitor(tmp_path, path, "out", "--alert", EO)
    assert [w["rows"] for w in report["windows"]] == [1000, 1000]
    assert _alert_windows(report, "constraint") == ["2024-01-02"] and rc == 3


def test_duckdb_and_sqlite_tables_read_incrementally(tmp_path):
    rows = pd.DataFrame(day_rows(1, n=1500) + day_rows(2, n=1500, bias=0.3))
    db = tmp_path / "logs.duckdb"
    with duckdb.connect(str(db)) as con:
        con.register("frame", rows.iloc[:2000])
        con.execute("CREATE TABLE preds AS SELECT * FROM frame")
    lite = tmp_path / "logs.sqlite"
    with sqlite3.connect(lite) as con:
        rows.iloc[:2000].to_sql("preds", con, index=False)
    for path, out in ((db, "duck"), (lite, "lite")):
        rc, first = _monitor(tmp_path, path, out, "--table", "preds", "--alert", EO)
        assert first["rows_processed"] == 2000
    with duckdb.connect(str(db)) as con:
        con.register("frame", rows.iloc[2000:])
        con.execute("INSERT INTO preds SELECT * FROM frame")
    with sqlite3.connect(lite) as con:
        rows.iloc[2000:].to_sql("preds", con, index=False, if_exists="append")
    for path, out in ((db, "duck"), (lite, "lite")):
        rc, second = _monitor(tmp_path, path, out, "--table", "preds", "--alert", EO)
        assert second["rows_processed"] == 1000 and second["rows_total"] == 3000
        assert [w["rows"] for w in second["windows"]] == [1500, 1500]
        assert _alert_windows(second, "constraint") == ["2024-01-02"] and rc == 3


def test_python_api_batches_equal_the_file_run(tmp_path):
    rows = day_rows(1, n=1200) + day_rows(2, n=1200, bias=0.3)
    config = MonitorConfig(window="1d", alerts=(EO,), n_bootstrap=200)
    with FairnessMonitor(config) as monitor:
        for start in range(0, len(rows), 500):
            monitor.update(rows[start : start + 500])
        batched = monitor.report()
    write_jsonl(tmp_path / "all.jsonl", rows)
    run = run_monitor(str(tmp_path / "all.jsonl"), tmp_path / "out", config, plots=False)
    for a, b in zip(batched["windows"], run.report["windows"]):
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-12)
        assert a["intervals"].keys() == b["intervals"].keys()
        for key, interval in a["intervals"].items():
            assert interval == pytest.approx(b["intervals"][key], abs=1e-12)
        assert a["per_group"]["female"]["intervals"]["tpr"] == pytest.approx(
            b["per_group"]["female"]["intervals"]["tpr"]
        )
    assert [a["window"] for a in batched["alerts"] if a["kind"] == "constraint"] == ["2024-01-02"]
    assert (tmp_path / "out" / STATE_NAME).is_file()


def test_labels_arriving_for_some_rows_only(tmp_path):
    rows = day_rows(1)
    for r in rows[::2]:
        r.pop("label")
    write_jsonl(tmp_path / "logs" / "d.jsonl", rows)
    _, report = _monitor(tmp_path, tmp_path / "logs" / "d.jsonl")
    w = report["windows"][0]
    assert w["rows"] == 2000 and w["labelled_rows"] == 1000
    assert w["per_group"]["female"]["labelled"] + w["per_group"]["male"]["labelled"] == 1000
    frame = pd.DataFrame(rows)
    assert w["metrics"]["selection_rate"] == pytest.approx((frame["score"] >= 0.5).mean())
    lab = frame.dropna(subset=["label"])
    assert w["metrics"]["accuracy"] == pytest.approx(((lab["score"] >= 0.5) == lab["label"]).mean())


def test_no_labels_gives_label_free_metrics_only(tmp_path):
    write_days(tmp_path / "logs", range(1, 3), label=False)
    rc, report = _monitor(tmp_path, tmp_path / "logs" / "*.jsonl", "out", "--alert", EO)
    w = report["windows"][1]
    assert "demographic_parity_difference" in w["metrics"] and "equalized_odds_difference" not in w["metrics"]
    assert rc == 0


def test_outputs_markdown_and_plots(tmp_path):
    write_days(tmp_path / "logs", range(1, 7), regression_from=5)
    rc = main(
        [
            "monitor",
            "--logs",
            str(tmp_path / "logs" / "*.jsonl"),
            "--output",
            str(tmp_path / "out"),
            "--alert",
            EO,
            "--n-bootstrap",
            "200",
        ]
    )
    assert rc == 3
    md = (tmp_path / "out" / "monitor.md").read_text()
    assert "equalized_odds_difference 0." in md and "**firing**" in md and "2024-01-05" in md
    png = tmp_path / "out" / "plots" / "equalized_odds_difference.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from fairtune.monitor.report import windows_frame

    frame = windows_frame(json.loads((tmp_path / "out" / "monitor.json").read_text()))
    eo = frame[frame["metric"] == "equalized_odds_difference"]
    assert eo["alert"].tolist() == [False] * 4 + [True] * 2


def test_timestamps_as_epoch_seconds_and_with_offsets_fall_in_the_same_windows(tmp_path):
    base = day_rows(1, n=600) + day_rows(2, n=600)
    iso = pd.to_datetime([r["timestamp"] for r in base])
    epoch = [dict(r, timestamp=int(t.timestamp())) for r, t in zip(base, iso)]
    shifted = [
        dict(r, timestamp=(t + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")) for r, t in zip(base, iso)
    ]
    reports = []
    for name, rows in (("iso", base), ("epoch", epoch), ("offset", shifted)):
        write_jsonl(tmp_path / name / "l.jsonl", rows)
        reports.append(_monitor(tmp_path, tmp_path / name / "l.jsonl", f"out_{name}")[1])
    assert [[w["rows"] for w in r["windows"]] for r in reports] == [[600, 600]] * 3
    assert [w["window"] for w in reports[2]["windows"]] == ["2024-01-01", "2024-01-02"]


def test_string_classes_with_positive_label(tmp_path):
    rows = [
        dict(r, prediction="approve" if r.pop("score") >= 0.5 else "deny", label="approve" if r["label"] else "deny")
        for r in day_rows(1, n=1000)
    ]
    write_jsonl(tmp_path / "l.jsonl", rows)
    rc, report = _monitor(tmp_path, tmp_path / "l.jsonl", "out", "--positive-label", "approve")
    frame = pd.DataFrame(rows)
    w = report["windows"][0]
    assert w["metrics"]["selection_rate"] == pytest.approx((frame["prediction"] == "approve").mean())
    assert w["metrics"]["accuracy"] == pytest.approx((frame["prediction"] == frame["label"]).mean())
    assert "bias_coefficient_gap" not in w["metrics"]  # no scores, no residuals


def test_a_missing_score_names_the_score_column(tmp_path, capsys):
    rows = [{"timestamp": "2024-01-01", "score": s, "group": "f"} for s in (0.2, None, 1.5)]
    write_jsonl(tmp_path / "l.jsonl", rows)
    rc = main(["monitor", "--logs", str(tmp_path / "l.jsonl"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "no readable 'score'" in err and "l.jsonl" in err and "Traceback" not in err


def test_update_takes_frames_arrow_tables_and_column_dicts():
    import pyarrow as pa

    rows = day_rows(1, n=900)
    frame = pd.DataFrame(rows)
    config = MonitorConfig(window="1d", n_bootstrap=0)
    results = []
    for batches in (
        [frame.iloc[:300], frame.iloc[300:]],
        [pa.Table.from_pandas(frame)],
        [frame.iloc[:450].to_dict("list"), frame.iloc[450:].to_dict("list")],
    ):
        with FairnessMonitor(config) as monitor:
            assert sum(monitor.update(b) for b in batches) == 900
            results.append(monitor.report()["windows"][0]["metrics"])
    assert results[0] == pytest.approx(results[1]) and results[0] == pytest.approx(results[2])
    assert results[0]["selection_rate"] == pytest.approx((frame["score"] >= 0.5).mean())
