"""Model compression: structured filter pruning (channels removed, not masked)."""

from .prune import prune_filters, pruned_widths

__all__ = ["prune_filters", "pruned_widths"]
