"""The de Boer claim checks on small tables whose answer is known, and the Table 2 bookkeeping."""

import pandas as pd

from flowcore.studies.deboer2020 import claims
from flowcore.studies.deboer2020.config import THESIS_TABLE2
from flowcore.studies.deboer2020.truths import PowerGaussian
from flowcore.verdicts import Verdict


def _summary(values):
    rows = []
    for (psi, d), lls in values.items():
        for b, ll in enumerate(lls):
            rows.append({"ψ": psi, "D": d, "B": b, "runs": "1/1", "mean over seeds": ll, "SE": 0.02, "best of seeds": ll, "best SE": 0.02,
                         "thesis": THESIS_TABLE2[(psi, d)][b], "truth E log p": PowerGaussian(d, psi).expected_log_likelihood()})
    return pd.DataFrame(rows)


def test_flat_at_psi_1_and_rising_for_psi_above_1_reproduce():
    s = _summary({(1, 2): [-2.84, -2.85, -2.84], (3, 2): [-3.5, -3.0, -2.6], (3, 3): [-4.5, -4.3, -3.9]})
    assert claims.assess("D1", claims.d1(s)).verdict == Verdict.REPRODUCED
    assert claims.assess("D2", claims.d2(s)).verdict == Verdict.REPRODUCED
    s2 = _summary({(1, 2): [-2.84, -2.5, -2.84], (3, 2): [-2.6, -3.0, -3.5]})
    assert claims.assess("D1", claims.d1(s2)).verdict == Verdict.NOT
    assert claims.assess("D2", claims.d2(s2)).verdict == Verdict.NOT


def test_the_thesis_table_cannot_beat_the_truth():
    s = _summary({(1, 2): [-2.84, -2.85, -2.84]})
    found = claims.d6(s)
    assert claims.assess("D6", found).verdict == Verdict.NOT  # −2.5 > −2.84: above the truth
    assert "largest excess +0.34" in found.headline


def test_the_bridge_needs_a_drop_at_b_3():
    moons = pd.DataFrame({"B": [0, 3, 4], "mass where p < 1e-3": [0.10, 0.02, 0.03]})
    assert claims.assess("D4", claims.d4(moons)).verdict == Verdict.REPRODUCED
    moons["mass where p < 1e-3"] = [0.10, 0.09, 0.08]
    assert claims.assess("D4", claims.d4(moons)).verdict == Verdict.NOT
