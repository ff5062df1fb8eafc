"""Cluster providers and helpers for the e2e suite."""
