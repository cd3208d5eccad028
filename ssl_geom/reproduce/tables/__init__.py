"""Every reproduced table by name, for ``python -m ssl_geom.reproduce TABLE`` and the sweeps.

One module per paper holds its tables (rows, published numbers, claims, profiles): ``hssl``
(H-SSL Tables 1-2), ``care`` (CARE Table 1 and its λ sweep) and ``geometry_paper`` (the
geometry paper's rank figure); ``profiles`` builds every table's profiles, and
``reproduce/schema.py`` defines what a table is.
"""

from __future__ import annotations

from ..schema import TableSpec
from .care import CARE_LAMBDA_TABLE, CARE_TABLE
from .geometry_paper import RANK_TABLE
from .hssl import TABLE1, TABLE2

TABLES: dict[str, TableSpec] = {
    t.name: t for t in (TABLE1, TABLE2, CARE_TABLE, CARE_LAMBDA_TABLE, RANK_TABLE)
}


def get_table(name: str) -> TableSpec:
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; available: {', '.join(sorted(TABLES))}")
    return TABLES[name]
