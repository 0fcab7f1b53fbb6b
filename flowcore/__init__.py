"""flowcore: normalizing flows on data whose densities are known, and the estimators to judge them.

The core (closed forms, estimators, flows, training, configs and cached runs, verdicts, sweeps,
report) serves every study; :mod:`flowcore.studies` holds what is specific to one paper.

    from flowcore import Gaussian, RealNVP
    p = Gaussian(mean, cov); p.log_prob(x); p.sample(n, generator=g)
    p.entropy(); p.cross_entropy(q); p.kl(q)
    flow = RealNVP(dim, n_couplings=8, hidden=(64, 64))
    z, log_det = flow.transform(x); x, _ = flow.transform.inverse(z);
    flow.log_prob(x); flow.sample(n)
"""

from flowcore.allocator import tune_malloc

tune_malloc()  # before any tensor: see flowcore.allocator

from flowcore.devices import resolve_device  # noqa: E402
from flowcore.flows import RealNVP  # noqa: E402
from flowcore.gaussians import Gaussian, GaussianRecipe, training_gaussian  # noqa: E402

__all__ = ["Gaussian", "GaussianRecipe", "RealNVP", "resolve_device", "training_gaussian"]
__version__ = "0.2.0"
