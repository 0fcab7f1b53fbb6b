"""The statistics of a family and the calibration, before and after issue 24: old vs new seconds.

    .venv/bin/python bench/bench_stats.py [--n-test 100000] [--dim 50] [--draws 20000]
        [--repeats 1] [--parts stats calibration] [--quick]

(a) **stats**: everything ``evaluate_family`` computes from a family's scores once they exist, for
one family of the default profile: 24 members (6 scales × 4 shifts) of ``--n-test`` scores each for
the four densities (truth, model and the two nulls) plus the reference set Q(p). Old: the member by
member code (``reference_family_table`` and ``reference_curves`` of
``tests/unit/debruin2024/test_batched_statistics.py``, i.e. evaluation.py at commit 34d0733); new:
``evaluation.family_statistics``. Rows for the parts (all 4 scores × all members each): AUROC (old:
``auroc`` on the sorted reference, which it sorts again, and two binary searches per score in
random order; new: each member's scores sorted once, ``auroc_sorted``), TNR (old: a pass per member;
new: ``true_negative_rate_sorted`` on the sorted rows, whose sort the AUROC row already counts),
KDEs (old: 7 overlaps of 2 KDEs and 4 curves per member; new: one ``binned_kdes`` per sample, the
overlaps and curves from them), and the whole table with its curves. The scores are made up
(log-likelihood-like: -χ²_D/2 plus noise; a quarter of the samples rounded to 3 decimals, so
ties occur) since the statistics' cost depends on their number, not on the flow.

(b) **calibration**: the default profile's two calibrations (``calibrate_perturbation`` and
``calibrate_outlier``, D = ``--dim``, ``--draws`` draws, 10× for the check). Old: one membership
test at a time (``reference_calibrate_*`` of the same test module); new: the matrix products.

Each new result is checked against the old one (``bitwise`` / ``identical`` in the last column).
Speed is measured here, never asserted in tests. Run it on a quiet machine; it prints the CPU model,
whether the CPU has AVX-512 (avx512f in /proc/cpuinfo), the thread counts and the load average
before and after. ``--quick`` is a smoke run at tiny sizes (seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench_train import cpu_flags, cpu_model  # noqa: E402  (bench/ is the script's folder)
from flowcore.estimators import (
    auroc_sorted,
    binned_kdes,
    fit_bounds_sorted,
    overlap_kdes,
    true_negative_rate,
    true_negative_rate_sorted,
)
from flowcore.gaussians import GaussianRecipe, training_gaussian
from flowcore.studies.debruin2024.calibration import (
    Targets,
    calibrate_outlier,
    calibrate_perturbation,
)
from flowcore.studies.debruin2024.evaluation import _MODEL_LIKE, SCORES, family_statistics
from flowcore.studies.debruin2024.families import family

ROOT = Path(__file__).resolve().parents[1]
SCALES = (0.25, 0.5, 0.75, 1.0, 1.25, 1.75)
SHIFTS = (0.0, 0.25, 0.5, 0.75)


def references():
    """The old code, kept in the test module (which loads test_estimators.py's references)."""
    path = ROOT / "tests" / "unit" / "debruin2024" / "test_batched_statistics.py"
    spec = importlib.util.spec_from_file_location("_bench_stats_references", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def family_scores(dim: int, n: int, seed: int = 0):
    """One default-profile family (affine, 24 members) and made-up scores for it."""
    rng = np.random.default_rng(seed)
    p = training_gaussian(dim, GaussianRecipe(), seed=seed)
    members = family("affine", p, SCALES, SHIFTS, seed=seed)
    m = len(members)

    def scores(size: int, shift: float) -> dict[str, np.ndarray]:
        truth = -0.5 * rng.chisquare(dim, size) - 0.5 * dim * np.log(2 * np.pi) + shift
        out = {"truth": truth}
        for k, noise in (("model", 0.3), ("gaussian", 0.1), ("untrained", 2.0)):
            out[k] = truth + noise * rng.standard_normal(size) - noise
        for v in out.values():
            v[: size // 4] = v[: size // 4].round(3)  # some ties
        return out

    member_scores = scores(m * n, -1.0)
    ref = scores(n, 0.0)
    log_q = member_scores["truth"] + rng.standard_normal(m * n)
    return p, members, member_scores, log_q, ref


def seconds(call, repeats: int):
    """Median wall seconds of ``repeats`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bitwise(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool((a.view(np.int64) == b.view(np.int64)).all())


def stats_rows(ref_module, dim: int, n: int, repeats: int, n_grid: int = 256) -> list[tuple]:
    est = ref_module._ref  # the estimator references (test_estimators.py)
    p, members, scores, log_q, ref = family_scores(dim, n)
    m = len(members)
    rows_of = {k: scores[k].reshape(m, n) for k in SCORES}
    ref_sorted = {k: np.sort(ref[k]) for k in SCORES}
    bounds = {k: fit_bounds_sorted(ref_sorted[k], 0.975) for k in SCORES}
    out = []

    def old_auroc():
        return [[est.reference_auroc(ref_sorted[k], row) for row in rows_of[k]] for k in SCORES]

    def new_auroc():
        return [auroc_sorted(ref_sorted[k], np.sort(rows_of[k], axis=1)) for k in SCORES]

    t_old, a_old = seconds(old_auroc, repeats)
    t_new, a_new = seconds(new_auroc, repeats)
    out.append((f"AUROC, {len(SCORES)} scores × {m} members", t_old, t_new, bitwise(a_old, a_new)))

    ordered = {k: np.sort(rows_of[k], axis=1) for k in SCORES}
    t_old, r_old = seconds(
        lambda: [[true_negative_rate(bounds[k], row) for row in rows_of[k]] for k in SCORES],
        repeats,
    )
    t_new, r_new = seconds(
        lambda: [true_negative_rate_sorted(bounds[k], ordered[k]) for k in SCORES], repeats
    )
    out.append(("TNR (new: on the sorted rows)", t_old, t_new, bitwise(r_old, r_new)))

    def old_kdes():
        values = []
        for i in range(m):
            ll = {k: rows_of[k][i] for k in SCORES}
            values.append(est.reference_overlap_coefficient(ll["truth"], ref["truth"]))
            for k in _MODEL_LIKE:
                values.append(est.reference_overlap_coefficient(ll[k], ref[k]))
                values.append(est.reference_overlap_coefficient(ll[k], ll["truth"]))
            for source in (ll["truth"], ll["model"], ref["truth"], ref["model"]):
                values.extend(est.reference_kde_binned(source, n_grid=n_grid)[1][::64])
        return values

    def new_kdes():
        kdes = {k: binned_kdes(rows_of[k]) for k in SCORES}
        ref_kdes = {k: binned_kdes(ref[k])[0] for k in SCORES}
        values = []
        for i in range(m):
            values.append(overlap_kdes(kdes["truth"][i], ref_kdes["truth"]))
            for k in _MODEL_LIKE:
                values.append(overlap_kdes(kdes[k][i], ref_kdes[k]))
                values.append(overlap_kdes(kdes[k][i], kdes["truth"][i]))
            for e in (kdes["truth"][i], kdes["model"][i], ref_kdes["truth"], ref_kdes["model"]):
                values.extend(e(e.grid(n_grid))[::64])
        return values

    t_old, k_old = seconds(old_kdes, repeats)
    t_new, k_new = seconds(new_kdes, repeats)
    out.append(("KDEs: 7 OVL + 4 curves per member", t_old, t_new, bitwise(k_old, k_new)))

    def old_family():
        table = ref_module.reference_family_table("affine", p, members, scores, log_q, ref, 0.975)
        return table, ref_module.reference_curves(scores, ref, m, n_grid)

    def new_family():
        return family_statistics("affine", p, members, scores, log_q, ref, 0.975, n_grid)

    t_old, (table_old, curves_old) = seconds(old_family, repeats)
    t_new, (table_new, curves_new) = seconds(new_family, repeats)
    numbers = table_old.select_dtypes("number").columns
    same = (
        list(table_old.columns) == list(table_new.columns)
        and bitwise(table_old[numbers].to_numpy(), table_new[numbers].to_numpy())
        and torch.equal(curves_old, curves_new)
    )
    out.append((f"whole family: table + curves ({m} members)", t_old, t_new, same))
    return out


def calibration_rows(ref_module, dim: int, draws: int, repeats: int) -> list[tuple]:
    recipe = dataclasses.replace(GaussianRecipe(), mean_scale=1.0)
    targets = Targets(dim=dim, tpr=0.975)
    sizes = {"n_draws": draws, "n_check": 10 * draws}
    out, total_old, total_new, all_same = [], 0.0, 0.0, True
    for name, old, new in (
        (
            "calibrate_perturbation (α, β)",
            lambda: ref_module.reference_calibrate_perturbation(recipe, 0, targets, **sizes),
            lambda: calibrate_perturbation(recipe, 0, targets, **sizes),
        ),
        (
            "calibrate_outlier (m, c)",
            lambda: ref_module.reference_calibrate_outlier(
                recipe, 0, SCALES, SHIFTS, targets, **sizes
            ),
            lambda: calibrate_outlier(recipe, 0, SCALES, SHIFTS, targets, **sizes),
        ),
    ):
        t_old, c_old = seconds(old, repeats)
        t_new, c_new = seconds(new, repeats)
        same = ref_module.canonical(c_old) == ref_module.canonical(c_new)
        out.append((name, t_old, t_new, same))
        total_old, total_new, all_same = total_old + t_old, total_new + t_new, all_same and same
    out.append(("one calibration of the profile (both)", total_old, total_new, all_same))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-test", type=int, default=100_000, help="scores per member and Q(p)")
    parser.add_argument("--dim", type=int, default=50, help="D of the family and calibration")
    parser.add_argument("--draws", type=int, default=20_000, help="calibration_draws")
    parser.add_argument("--repeats", type=int, default=1, help="median of this many runs")
    parser.add_argument("--parts", nargs="+", default=["stats", "calibration"])
    parser.add_argument("--quick", action="store_true", help="smoke run at tiny sizes")
    args = parser.parse_args()
    if args.quick:
        args.n_test, args.dim, args.draws, args.repeats = 2_000, 6, 400, 1
    ref_module = references()
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores, {cpu_flags()} "
        f"(avx512f in /proc/cpuinfo: {'yes' if cpu_flags() == 'AVX-512' else 'no'}); "
        f"numpy {np.__version__}, torch {torch.__version__} with {torch.get_num_threads()} threads"
    )
    print(f"load average before: {os.getloadavg()}")
    # Warm-up (imports, first calls of every path), not timed.
    stats_rows(ref_module, 4, 200, 1)
    calibration_rows(ref_module, 3, 100, 1)
    rows = []
    if "stats" in args.parts:
        print(f"(a) one family: 24 members × n_test = {args.n_test:,} scores, D = {args.dim}")
        rows += stats_rows(ref_module, args.dim, args.n_test, args.repeats)
    if "calibration" in args.parts:
        print(f"(b) calibration: D = {args.dim}, {args.draws:,} draws, {10 * args.draws:,} checks")
        rows += calibration_rows(ref_module, args.dim, args.draws, args.repeats)
    print(f"{'part':<46} {'old s':>9} {'new s':>9} {'× faster':>9}  same result")
    for name, t_old, t_new, same in rows:
        print(
            f"{name:<46} {t_old:>9.3f} {t_new:>9.3f} {t_old / t_new:>9.1f}  "
            f"{'bitwise / identical' if same else 'DIFFERENT'}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
