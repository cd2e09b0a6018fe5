"""`tinybnn search`: the most accurate model that fits a device (`run.search`)."""

from .budget import Budget
from .run import SearchResult, search

__all__ = ["Budget", "SearchResult", "search"]
