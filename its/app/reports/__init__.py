"""Reports: gather every domain's efficiency indicators for a period and render them.

The indicators themselves live in the domains (``telematics.kpi``, ``parking.kpi``,
``traffic.kpi``, ``video.kpi``) and in `its.app.reports.platform`; this package only gathers
(`gather`), renders (`render`), serves (`api`) and schedules (`nightly`) them.
"""

from its.app.reports.gather import build_report, parse_period, report_json, report_tables

__all__ = ["build_report", "parse_period", "report_json", "report_tables"]
