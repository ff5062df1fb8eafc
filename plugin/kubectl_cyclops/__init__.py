"""kubectl-cyclops: resource details for kubectl, declared in JSONPath field maps."""

__version__ = "0.1.0"
