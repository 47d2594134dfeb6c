"""The EndpointSlice controller: a pure reconcile step (reconciler.py) and its controller shell."""
