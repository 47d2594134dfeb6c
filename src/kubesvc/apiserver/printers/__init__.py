"""Server-side printing: the meta.k8s.io/v1 Tables behind ``kubectl get``.

Pure functions over stored objects; the HTTP layer decides when a Table was
asked for and calls :func:`to_table`.
"""

from kubesvc.apiserver.printers.columns import columns
from kubesvc.apiserver.printers.format import human_duration
from kubesvc.apiserver.printers.table import partial_metadata, row, to_table

__all__ = ["columns", "human_duration", "partial_metadata", "row", "to_table"]
