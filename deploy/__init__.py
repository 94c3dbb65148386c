"""Deployment helpers that are not part of the package: the local cluster."""
