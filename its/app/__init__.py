"""The application layer: CLI, API factory, demo, control centre, reports, benchmarks.

It sits above the domains and assembles them from the registry of descriptors
(:mod:`its.app.registry`); nothing below it imports it.
"""
