"""The test suite's own scheduling: under ``make test`` (``-n 2 --dist loadgroup``) a module is
one unit of work, so its module fixtures are built once and its tests keep their order.

pytest-xdist tells a group by a suffix it appends to each test's node id on the worker; pytest
9.2 stopped reading the attribute xdist rewrites, which silently made every test its own unit
(module fixtures built on both workers, process-killing tests side by side, CI twice as long).
"""

from __future__ import annotations

import pytest


def test_a_module_is_one_unit_of_work_under_loadgroup(request: pytest.FixtureRequest) -> None:
    config = request.config
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return  # not a loadgroup worker: nothing is grouped, nothing to check
    assert request.node.nodeid.endswith("@tests/test_suite_grouping.py"), request.node.nodeid

