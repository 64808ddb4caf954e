"""The compliance report over HTTP (all `compliance:read`): the API's JSON, the UI's page,
and the page's exports, a self-contained HTML document and a PDF, both as downloads."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from baseshift.web.access import requires
from baseshift.web.openapi import operation
from baseshift.web.render import render, render_text
from baseshift.web.requests import baseshift_of
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .access import COMPLIANCE_READ
from .pdf import report_pdf
from .report import Report, build_report

TAGS = ["compliance"]
STRING = {"type": "string"}
COUNT = {"type": "integer", "minimum": 0}
REFERENCES = {"type": "object", "additionalProperties": {"type": "array", "items": STRING}}
FRAMEWORK = obj({"status": {"enum": ["compliant", "partially_compliant", "non_compliant"]},
                 "last_assessment": STRING, "controls_implemented": COUNT,
                 "controls_pending": COUNT},
                ("status", "last_assessment", "controls_implemented", "controls_pending"))
CONTROL = obj({"id": STRING, "title": STRING, "frameworks": REFERENCES,
               "status": {"enum": ["implemented", "pending"]}, "evidence": STRING},
              ("id", "title", "frameworks", "status", "evidence"))
REPORT = obj({"report_date": STRING,
              "compliance_status": {"type": "object", "additionalProperties": FRAMEWORK},
              "controls": {"type": "array", "items": CONTROL}},
             ("report_date", "compliance_status", "controls"))

EXPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
"""The HTML export carries its style inline (it must read alone, saved to a file); nothing
else, scripts least of all, may load."""


@requires(COMPLIANCE_READ)
@operation("The compliance report, computed now from the live installation: every "
           "control plugins judge, and per framework (GDPR, HIPAA, SOC 2) how many of its "
           "controls are implemented or pending", tags=TAGS, response=REPORT)
async def report_json(request: Request) -> Response:
    report = await build_report(baseshift_of(request).hooks)
    return JSONResponse(report.to_json())


@requires(COMPLIANCE_READ)
async def report_page(request: Request) -> Response:
    report = await build_report(baseshift_of(request).hooks)
    return render(request, "compliance/compliance.html",
                  {"section": "compliance", "report": report})


@requires(COMPLIANCE_READ)
async def report_html(request: Request) -> Response:
    report = await build_report(baseshift_of(request).hooks)
    html = render_text(request, "compliance/export.html", {"report": report})
    return HTMLResponse(html, headers={
        "Content-Disposition": f'attachment; filename="{_file_name(report, "html")}"',
        "Content-Security-Policy": EXPORT_POLICY})


@requires(COMPLIANCE_READ)
async def report_pdf_file(request: Request) -> Response:
    report = await build_report(baseshift_of(request).hooks)
    return Response(report_pdf(report), media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{_file_name(report, "pdf")}"'})


def _file_name(report: Report, suffix: str) -> str:
    return f"compliance-report-{report.date[:10]}.{suffix}"


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/compliance/report", report_json, methods=["GET"],
              name="compliance:report"),
        Route("/ui/compliance", report_page, methods=["GET"], name="compliance:page"),
        Route("/ui/compliance/report.html", report_html, methods=["GET"],
              name="compliance:html"),
        Route("/ui/compliance/report.pdf", report_pdf_file, methods=["GET"],
              name="compliance:pdf"),
    ]
