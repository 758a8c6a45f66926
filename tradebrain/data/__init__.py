"""Market data: schemas, validation, import, the Parquet store, resampling, download, synthesis."""

from tradebrain.data.schemas import SCHEMAS, Kind, conform, schema_for
from tradebrain.data.store import DatasetInfo, DatasetKey, ParquetStore, WriteResult

__all__ = [
    "SCHEMAS",
    "DatasetInfo",
    "DatasetKey",
    "Kind",
    "ParquetStore",
    "WriteResult",
    "conform",
    "schema_for",
]
