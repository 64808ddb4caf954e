"""The compliance report as a PDF (fpdf2): the summary per framework, then every control
with its status, references and evidence. Text goes in with fpdf2's core fonts, which know
Latin-1 only: any other character prints as `?`."""
from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from .report import Report

STATUS_WORDS = {"compliant": "compliant", "partially_compliant": "partially compliant",
                "non_compliant": "non-compliant"}


def latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def report_pdf(report: Report) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title("Base Shift compliance report")
    pdf.set_creator("Base Shift")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def line(text: str, size: float = 10, style: str = "", height: float = 5) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(width, height, latin1(text), align="L",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    line("Compliance report", 18, "B", 9)
    line(f"Computed from the live installation at {report.date}")
    pdf.ln(4)
    for summary in report.frameworks:
        line(f"{summary.name}: {STATUS_WORDS[summary.status]} "
             f"({summary.implemented} implemented, {summary.pending} pending)", 11, "B", 6)
    pdf.ln(4)
    for control in report.controls:
        line(f"[{control.status.upper()}] {control.title}", 11, "B", 6)
        line(f"Control {control.id}", 9)
        refs = "; ".join(f"{name} {', '.join(items)}"
                         for name, items in control.frameworks.items() if items)
        line(f"References: {refs or 'none'}", 9)
        line(f"Evidence: {control.evidence}", 9)
        pdf.ln(3)
    return bytes(pdf.output())
