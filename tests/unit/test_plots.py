import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from flowcore.report import plots  # noqa: E402
from flowcore.studies.debruin2024 import sensitivity  # noqa: E402


def test_sweep_panels_label_units_and_go_symlog_only_where_one_setting_dwarfs_the_rest():
    rows = []
    for claim, scale_of_outlier in (("C5", 1e6), ("C6", 1.0)):
        for i, value in enumerate(["1,000", "10,000", "100,000"]):
            for model in ("RealNVP", "ML Gaussian"):
                metric = (0.1 + 0.05 * i) * (
                    scale_of_outlier if (i == 2 and model == "RealNVP") else 1.0
                )
                rows.append(
                    {
                        "claim": claim,
                        "factor": "training-set size",
                        "value": value,
                        "model": model,
                        "holds": "0/3",
                        "metric": metric,
                        "CI low": metric - 0.02,
                        "CI high": metric + 0.02,
                    }
                )
    fig = plots.sweep_panels(pd.DataFrame(rows), sensitivity.METRICS, "title")
    c5, c6 = fig.axes[:2]
    assert c5.get_yscale() == "symlog" and c5.get_ylabel() == "nats (symmetric log scale)"
    assert c6.get_yscale() == "linear" and c6.get_ylabel() == "OVL"
    assert c5.get_title().startswith("C5: gap at s = 1")
    assert [t.get_text() for t in c6.get_xticklabels()] == [
        "training-set size: 1,000",
        "training-set size: 10,000",
        "training-set size: 100,000",
    ]
    matplotlib.pyplot.close(fig)
