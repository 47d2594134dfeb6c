"""kubesvc: the Kubernetes Service system in Python."""

__version__ = "0.1.0"
