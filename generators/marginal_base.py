"""What the marginal generators (MST, AIM) share once fitted: a discrete model over the
discretised domain, sampled with the caller's rng and decoded. Reads no data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthrelease.errors import GeneratorError
from synthrelease.generators.base import DPGenerator
from synthrelease.generators.domain import Discretiser


class MarginalGenerator(DPGenerator):
    """Base of MST and AIM: ``self.model`` (``sample_codes``, ``total``, ``maps``) over
    ``self.discretiser``."""

    model: Any = None
    discretiser: Discretiser

    @property
    def estimated_rows(self) -> float:
        """The DP estimate of the training row count (a DP output, safe to use)."""
        self._require_fitted()
        assert self.model is not None
        return self.model.total

    def sample(self, num_rows: int, *, rng: np.random.Generator) -> pd.DataFrame:
        """``num_rows`` decoded rows from the fitted model (post-processing; reads no data)."""
        num_rows = self._check_rows(num_rows)
        self._require_fitted()
        if not isinstance(rng, np.random.Generator):
            raise GeneratorError("sample takes rng=numpy.random.Generator")
        assert self.model is not None
        codes = self.model.sample_codes(num_rows, rng)
        frame = pd.DataFrame({n: codes[i] for i, n in enumerate(self.discretiser.names)})
        return self.discretiser.decode(frame, rng)

    def _check_model_shape(self) -> None:
        """A loaded model must fit the loaded column spec, cell for cell."""
        if len(self.model.maps) != len(self.discretiser.names) or any(
            m.size != s for m, s in zip(self.model.maps, self.discretiser.sizes.values())
        ):
            raise GeneratorError("the stored model does not match the stored column spec")
