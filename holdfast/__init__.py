"""holdfast: a federated, peer-to-peer archive for research data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("holdfast")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
