"""kdns: a Kubernetes cluster DNS server. Importing the package starts nothing."""

__version__ = "0.1.0"
