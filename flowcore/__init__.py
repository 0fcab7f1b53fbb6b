"""flowcore: a plain RealNVP on Gaussians whose densities are known, and the estimators to judge it.

The stable public API::

    from flowcore import Gaussian, RealNVP
    p = Gaussian(mean, cov); p.log_prob(x); p.sample(n, generator=g)
    p.entropy(); p.cross_entropy(q); p.kl(q)
    flow = RealNVP(dim, n_couplings=8, hidden=(128, 128))
    z, log_det = flow(x); x = flow.inverse(z); flow.log_prob(x); flow.sample(n)
"""

from flowcore.flows import RealNVP, resolve_device
from flowcore.gaussians import Gaussian, GaussianRecipe, training_gaussian

__all__ = ["Gaussian", "GaussianRecipe", "RealNVP", "resolve_device", "training_gaussian"]
__version__ = "0.1.0"
