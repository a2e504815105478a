"""Arrays and metadata: holdfast.yaml, checks of declared arrays, and streaming reads.

Importing this package imports nothing heavy; the parts that need the optional
`holdfast[arrays]` extra (numpy, zarr, numpydantic, fsspec, jsonschema) import it when
used and raise MissingExtraError with an install hint when it is absent.
"""

from holdfast.arrays.errors import ArraysError, MetadataError, MissingExtraError, Problem

__all__ = ["ArraysError", "MetadataError", "MissingExtraError", "Problem"]
