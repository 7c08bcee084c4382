"""Datasets: the built-in synthetic generator, importers for real formats, manifests."""
