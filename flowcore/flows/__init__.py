r"""Normalizing flows in the style of nflows and zuko (thesis §2.1).

Convention: a transform maps data to latent, :math:`z = f_\theta(x)`, and every transform returns
``(output, log|det J|)`` both ways; a flow is a transform stack plus a base distribution:

.. math:: \log p_\theta(x) = \log p_Z(f_\theta(x))
    + \log\left|\det\frac{\partial f_\theta}{\partial x}\right|,
    \qquad p_Z = \mathcal{N}(0, I).

Modules: :mod:`~flowcore.flows.transforms` (:class:`Transform`, :class:`CompositeTransform`,
:class:`Permutation`), :mod:`~flowcore.flows.spec` (:class:`CouplingSpec`, the one definition of
an affine coupling, and :data:`LOG_SCALE_MAPS`, the one table of log-scale maps),
:mod:`~flowcore.flows.couplings` (:class:`AffineCoupling` and the masks :func:`halves`,
:func:`alternating`), :mod:`~flowcore.flows.distributions` (:class:`StandardNormal`,
:func:`standard_normal_log_prob`), :mod:`~flowcore.flows.flow` (:class:`Flow`),
:mod:`~flowcore.flows.realnvp` (:class:`RealNVP`), :mod:`~flowcore.flows.image` (image flows:
masks, the Kirichenko et al. coupling, convolutional st-networks, the logit pre-processing) and
:mod:`~flowcore.flows.fast` (the no-grad ``log_prob`` fast path and the fused training step).

Example:
    >>> import torch
    >>> from flowcore.flows import RealNVP
    >>> flow = RealNVP(4, n_couplings=2, hidden=(8,))
    >>> x = torch.randn(3, 4)
    >>> z, log_det = flow.transform(x)                 # data → latent
    >>> x_back, log_det_inv = flow.transform.inverse(z)
    >>> flow.log_prob(x).shape, flow.sample(5).shape
    (torch.Size([3]), torch.Size([5, 4]))
"""

from flowcore.flows.couplings import AffineCoupling, alternating, halves
from flowcore.flows.distributions import StandardNormal, standard_normal_log_prob
from flowcore.flows.fast import (
    FastPathUnsupported,
    FastPathWarning,
    onednn_linear_available,
    unsupported_reason,
)
from flowcore.flows.flow import Flow
from flowcore.flows.realnvp import RealNVP
from flowcore.flows.spec import LOG_SCALE_MAPS, CouplingSpec
from flowcore.flows.transforms import CompositeTransform, Permutation, Transform

__all__ = [
    "LOG_SCALE_MAPS",
    "AffineCoupling",
    "CompositeTransform",
    "CouplingSpec",
    "FastPathUnsupported",
    "FastPathWarning",
    "Flow",
    "Permutation",
    "RealNVP",
    "StandardNormal",
    "Transform",
    "alternating",
    "halves",
    "onednn_linear_available",
    "standard_normal_log_prob",
    "unsupported_reason",
]
