"""The release spec: everything public about one release, typed and validated.

A spec is loaded once at the edge (CLI, flow) with :func:`load_spec` and passed in.
Everything in it is *public metadata*: the schema's bounds and category sets become part
of the release, so they must come from domain knowledge, never silently from the rows.

Modules: ``base`` (shared rules), ``sources``, ``schema`` (columns), ``sections``
(privacy, generator, gate, store, ...), ``release`` (:class:`ReleaseSpec`), ``loading``.
"""

from __future__ import annotations

from synthrelease.spec.base import (  # noqa: F401 - re-exported: the spec's public names
    DOMAIN_ESTIMATING_GENERATORS,
    GENERATOR_NAMES,
    NAME_RE,
    _Model,
)
from synthrelease.spec.loading import (  # noqa: F401 - re-exported: the spec's public names
    _SDV_TYPES,
    _merge_sdv_metadata,
    _resolve_paths,
    format_validation_error,
    load_spec,
    parse_spec,
)
from synthrelease.spec.release import (  # noqa: F401 - re-exported: the spec's public names
    ReleaseSpec,
)
from synthrelease.spec.schema import (  # noqa: F401 - re-exported: the spec's public names
    DOMAIN_PROVENANCES,
    OUT_OF_DOMAIN_RULES,
    BooleanColumn,
    CategoricalColumn,
    Column,
    DatetimeColumn,
    NumericalColumn,
    Schema,
    _Column,
)
from synthrelease.spec.sections import (  # noqa: F401 - re-exported: the spec's public names
    Budget,
    DomainEstimate,
    DownstreamModel,
    Gate,
    GeneratorSpec,
    Holdout,
    Privacy,
    Publication,
    Retention,
    SpecProvenance,
    Store,
    Workspace,
)
from synthrelease.spec.sources import (  # noqa: F401 - re-exported: the spec's public names
    CsvSource,
    ParquetSource,
    Source,
    SqlSource,
)
