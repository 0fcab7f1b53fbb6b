"""What the Song et al. chapter computes besides the experiments themselves: where shrinking hurts,
the small-N summary, the thesis's verdicts side by side, the dimension nearest thesis_dim, and the
chapter's figures."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from flowcore.studies.debruin2024 import claims as thesis_claims  # noqa: E402
from flowcore.studies.song2024 import analysis, figures, linear  # noqa: E402


def _summary() -> pd.DataFrame:
    """A linear_summary by hand at d = 10: N = 5 (no MLE), 20 and 40; r = 0 and 0.1; α = 0, 1,
    10."""
    rows = []
    kl = {
        # (N, r): median KL at α = 0, 1, 10
        (5, 0.0): (np.inf, 9.0, 8.0),
        (20, 0.0): (1.0, 0.8, 1.3),  # α = 10 worse by 0.3
        (20, 0.1): (2.0, 2.5, 1.0),  # α = 1 worse by 0.5: the largest
        (40, 0.0): (0.5, 0.4, 0.45),
        (40, 0.1): (0.6, 0.6, 0.7),  # α = 10 worse by 0.1; α = 1 ties, which is not worse
    }
    for (n, r), values in kl.items():
        for a, v in zip((0.0, 1.0, 10.0), values):
            rows.append({"N": n, "N/d": n / 10, "r": r, "α": a, "median KL": v, "exists": 1.0})
    return pd.DataFrame(rows)


def test_shrinkage_harm_counts_the_cells_worse_than_the_mle_and_finds_the_largest_excess():
    harm = analysis.shrinkage_harm(_summary(), 10)
    # 4 (N, r) pairs with N > d, 2 values of α > 0 each; N = 5 has no MLE and is left out.
    assert (harm.worse, harm.cells) == (3, 8)
    assert harm.excess == pytest.approx(0.5)
    assert (harm.N, harm.r, harm.alpha) == (20, 0.1, 1.0)


def test_shrinkage_harm_without_a_worse_cell_or_without_cells():
    better = _summary().assign(**{"median KL": lambda t: np.where(t["α"] > 0, 0.01, 1.0)})
    assert analysis.shrinkage_harm(better, 10) == analysis.ShrinkageHarm(0, 8)
    assert analysis.shrinkage_harm(_summary(), 100) == analysis.ShrinkageHarm(0, 0)


def test_small_n_summary_per_n():
    small = pd.DataFrame(
        {
            "N": [2, 2, 3, 3],
            "r": 0.0,
            "replicate": [0, 1, 0, 1],
            "rank T": [1, 1, 2, 2],
            "NLL fall at s = 10": [2.30, 2.31, 2.29, 2.30],
            "NLL fall at s = 100": [4.6, 4.6, 4.6, 4.6],
            "KL(p‖prior)": [1.0, 3.0, 5.0, 6.0],
        }
    )
    out = analysis.small_n_summary(small)
    assert list(out.index) == [2, 3]
    assert out.loc[3, ("rank T", "max")] == 2
    assert out.loc[2, ("NLL fall at s = 10", "min")] == pytest.approx(2.30)
    assert out.loc[2, ("NLL fall at s = 10", "max")] == pytest.approx(2.31)
    assert out.loc[3, ("KL(p‖prior)", "median")] == pytest.approx(5.5)
    assert ("replicate", "max") not in out.columns


def test_thesis_verdicts_judge_each_failure_claim_on_each_table(monkeypatch):
    def fake_assess(part):
        check, table = part
        return SimpleNamespace(verdict=f"{check.claim} on {table.attrs['flow']}")

    monkeypatch.setattr(thesis_claims, "assess", fake_assess)
    plain, klj = pd.DataFrame(), pd.DataFrame()
    plain.attrs["flow"], klj.attrs["flow"] = "plain", "klj"
    out = analysis.thesis_verdicts({"plain": plain, "KLJ γ = 0.01": klj})
    failures = ["C5", "C6", "C7", "C8", "C9", "C10", "C11"]  # C4 is the fit claim: not compared
    assert list(out.index) == failures and list(out.columns) == ["plain", "KLJ γ = 0.01"]
    assert (
        out.loc["C7", "plain"] == "C7 on plain" and out.loc["C11", "KLJ γ = 0.01"] == "C11 on klj"
    )


def test_one_nearest_dimension_for_tables_and_lists():
    assert thesis_claims.nearest_dim([2, 5, 10, 20, 50], 20) == 20
    assert thesis_claims.nearest_dim((3, 7), 20) == 7
    assert thesis_claims.nearest_dim([10, 30], 20) == 10  # a tie goes to the smaller
    table = pd.DataFrame({"D": [50, 2, 50, 7]})
    assert thesis_claims.nearest_dim(table, 20) == 7 and thesis_claims.nearest_dim(table, 40) == 50
    with pytest.raises(ValueError, match="at least one"):
        thesis_claims.nearest_dim([], 20)


def test_fig2_draws_one_fitted_density_per_alpha_in_each_panel():
    fig = figures.fig2_densities(delta=2.0, alphas=(0.0, 100.0))
    l2, kl = fig.axes
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    assert l2.get_title() == f"L2 regularisation, δ = 2, N = {linear.FIG2_N}"
    assert kl.get_title().startswith("KL regularisation")
    assert (l2.get_xlabel(), l2.get_ylabel()) == ("x", "fitted density")
    # α = 0 is the MLE N(0, δ) in both panels; a strong KL prior pulls the variance towards G = 1.
    peak = 1 / np.sqrt(2 * np.pi * 2.0)
    assert l2.lines[0].get_ydata().max() == pytest.approx(peak, rel=1e-3)
    assert kl.lines[1].get_ydata().max() > peak > l2.lines[1].get_ydata().max()
    plt.close(fig)


def test_linear_heatmaps_one_panel_per_fraction_and_blank_where_the_mle_is_undefined():
    summary = _summary()
    fig = figures.linear_heatmaps(summary, [0.0, 0.1])
    panels, colorbar = fig.axes[:2], fig.axes[2]
    assert [ax.get_title() for ax in panels] == ["r = 0", "r = 0.1"]
    assert all(
        ax.get_xlabel() == "N/d" and ax.get_ylabel() == "α (pseudo-samples)" for ax in panels
    )
    assert "nats" in colorbar.get_ylabel()
    shown = panels[0].images[0].get_array()
    assert shown.shape == (3, 3)  # α × N/d
    assert np.isnan(np.ma.filled(shown, np.nan)[0, 0])  # N = 5 at α = 0: no MLE
    assert shown[1, 1] == pytest.approx(np.log10(0.8))
    plt.close(fig)


def test_deep_panels_one_line_per_n_without_weight_decay():
    rows = []
    for ds in ("gaussian", "moons"):
        for n in (50, 500):
            for g in (0.0, 0.1):
                for wd in (0.0, 1e-4):
                    rows.append(
                        {
                            "dataset": ds,
                            "N": n,
                            "r": 0.0,
                            "klj_weight": g,
                            "weight_decay": wd,
                            "KL*(p‖pθ)": 1.0 / n + g,
                            "CI low": 0.5 / n + g,
                            "CI high": 2.0 / n + g,
                        }
                    )
    fig = figures.deep_panels(pd.DataFrame(rows), [0.0])
    assert [ax.get_title() for ax in fig.axes] == ["gaussian, r = 0", "moons, r = 0"]
    for ax in fig.axes:
        assert ax.get_xlabel() == "klj_weight γ" and "nats" in ax.get_ylabel()
        assert ax.get_yscale() == "log"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["N = 50", "N = 500"]
        # Each line has one point per γ, the rows with weight decay left out.
        assert [len(bars.lines[0].get_xdata()) for bars in ax.containers] == [2, 2]
    plt.close(fig)
