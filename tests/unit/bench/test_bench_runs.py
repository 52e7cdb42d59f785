"""bench/_setup.py's repeated-run table: the figures and ratios every benchmark prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[3] / "bench"))

from _setup import Row, Runs, add_repeat, on_machine, percentile


def table_rows(runs: Runs, rows: list[Row]) -> dict[str, list[str]]:
    lines = runs.table(rows).splitlines()[2:]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return {c[0]: c[1:] for c in cells}


def test_a_rate_beside_its_naive_way_shows_min_median_max_and_the_ratio_of_medians() -> None:
    """Rates divide by the naive way's median, so above 1x means faster."""
    runs = Runs()
    for ours, naive in ((300.0, 10.0), (100.0, 20.0), (200.0, 40.0)):
        runs.add("ours", ours)
        runs.add("naive", naive)
    got = table_rows(runs, [Row("ours", "ours/s", "naive"), Row("naive", "naive/s")])
    assert got["ours/s"] == ["100", "**200**", "300", "10.00x naive"]
    assert got["naive/s"] == ["10", "**20**", "40", ""]


def test_a_time_divides_the_other_median_by_its_own_so_above_1x_still_means_better() -> None:
    """A latency half the naive one reads 2x, against every figure it is compared with."""
    runs = Runs()
    runs.add("ms", 5.0)
    runs.add("naive ms", 10.0)
    runs.add("floor ms", 2.5)
    got = table_rows(runs, [Row("ms", "ms", ("naive ms", "floor ms"), lower=True)])
    assert got["ms"][-1] == "2.00x naive ms (its / this); 0.50x floor ms (its / this)"


def test_percentile_is_the_nearest_rank_and_nan_for_no_samples() -> None:
    """p99 of 30 samples is the largest; p50 of 1..4 is 3 (no interpolation)."""
    assert percentile([float(v) for v in range(1, 31)], 0.99) == 30.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 3.0
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN


def test_repeat_takes_the_older_repeats_spelling_too() -> None:
    """`--repeats` (the emulator benches' spelling) sets the same `repeat`."""
    parser = argparse.ArgumentParser()
    add_repeat(parser, default=3)
    assert parser.parse_args([]).repeat == 3
    assert parser.parse_args(["--repeats", "7"]).repeat == 7
    assert parser.parse_args(["--repeat", "2"]).repeat == 2


def test_the_machine_is_printed_at_the_end_even_when_the_run_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A failed bench still says what it ran on and under what load."""
    with pytest.raises(RuntimeError), on_machine():
        raise RuntimeError("bench failed")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("machine at start: ")
    assert out[-1].startswith("machine at end: ")
    assert "cores" in out[-1] and "load average" in out[-1]
