"""Mechanisms that need an optional package (xformers, natten); each imports it behind a guard."""
