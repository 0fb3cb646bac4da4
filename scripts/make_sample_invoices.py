"""Generate the sample invoices of the example project, with their true values.

    .venv/bin/python scripts/make_sample_invoices.py [OUT_DIR]   (default samples/invoices)

Writes two text PDFs (reportlab) and two scanned-looking PNGs (Pillow), each with a
`<name>.json` beside it holding the values a correct extraction must produce (the
`schemas/invoice.json` shape). The output is deterministic, so re-running the script
gives byte-identical files and a clean `git diff`. The PNGs use a large, plain font so
that Tesseract reads them reliably.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT)


@dataclass(frozen=True)
class Invoice:
    file_stem: str
    kind: str  # "pdf" or "png"
    vendor: str
    vendor_address: str
    invoice_number: str
    invoice_date: str
    currency: str
    tax_rate: Decimal
    lines: tuple[Line, ...]

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0"))

    @property
    def tax(self) -> Decimal:
        return (self.subtotal * self.tax_rate).quantize(CENT)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax

    def truth(self) -> dict[str, object]:
        return {
            "vendor": self.vendor,
            "invoice_number": self.invoice_number,
            "invoice_date": self.invoice_date,
            "currency": self.currency,
            "line_items": [
                {
                    "description": line.description,
                    "quantity": line.quantity,
                    "unit_price": float(line.unit_price),
                    "amount": float(line.amount),
                }
                for line in self.lines
            ],
            "subtotal": float(self.subtotal),
            "tax": float(self.tax),
            "total": float(self.total),
        }

    def text_lines(self) -> list[str]:
        """The header and footer lines, shared by both renderings."""
        return [
            self.vendor,
            self.vendor_address,
            "",
            "INVOICE",
            f"Invoice number: {self.invoice_number}",
            f"Invoice date: {self.invoice_date}",
            f"Currency: {self.currency}",
        ]

    def totals_lines(self) -> list[tuple[str, str]]:
        rate = f"{format((self.tax_rate * 100).normalize(), 'f')}%"
        return [
            ("Subtotal", money(self.subtotal)),
            (f"Tax ({rate})", money(self.tax)),
            (f"Total {self.currency}", money(self.total)),
        ]


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


SAMPLES: tuple[Invoice, ...] = (
    Invoice(
        "northwind-inv-2024-001",
        "pdf",
        "Northwind Traders GmbH",
        "Hafenstrasse 12, 20457 Hamburg",
        "INV-2024-001",
        "2024-03-15",
        "EUR",
        Decimal("0.19"),
        (
            Line("Espresso beans, 1 kg bag", 12, Decimal("18.50")),
            Line("Oat milk, carton of 12", 5, Decimal("21.90")),
            Line("Delivery", 1, Decimal("35.00")),
        ),
    ),
    Invoice(
        "acme-a-7781",
        "pdf",
        "Acme Office Supplies Ltd",
        "4 Market Street, Leeds LS1 6DT",
        "A-7781",
        "2024-05-02",
        "GBP",
        Decimal("0.20"),
        (
            Line("Printer paper A4, box of 5 reams", 8, Decimal("24.99")),
            Line("Toner cartridge TN-2420", 3, Decimal("67.45")),
            Line("Desk chair, ergonomic", 2, Decimal("189.00")),
            Line("Whiteboard markers, pack of 10", 6, Decimal("7.35")),
        ),
    ),
    Invoice(
        "blue-harbor-bhc-0042",
        "png",
        "Blue Harbor Catering",
        "88 Pier Road, Portland ME 04101",
        "BHC-0042",
        "2024-06-30",
        "USD",
        Decimal("0.055"),
        (
            Line("Lunch buffet, 40 guests", 40, Decimal("23.50")),
            Line("Coffee service", 1, Decimal("145.00")),
        ),
    ),
    Invoice(
        "kestrel-kpw-1193",
        "png",
        "Kestrel Print Works",
        "19 Mill Lane, Bristol BS1 4QA",
        "KPW-1193",
        "2024-07-12",
        "GBP",
        Decimal("0.20"),
        (
            Line("Business cards, 500", 4, Decimal("32.00")),
            Line("Flyers A5, 2000", 1, Decimal("214.60")),
            Line("Design hours", 3, Decimal("55.00")),
        ),
    ),
)


def render_pdf(invoice: Invoice, path: Path) -> None:
    # invariant=1 drops the creation date and random ids: same input, same bytes.
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    _, height = A4
    y = height - 72
    for index, text in enumerate(invoice.text_lines()):
        pdf.setFont("Helvetica-Bold" if index in (0, 3) else "Helvetica", 16 if index in (0, 3) else 11)
        pdf.drawString(72, y, text)
        y -= 22
    y -= 14
    columns = (72, 330, 390, 470)
    pdf.setFont("Helvetica-Bold", 11)
    for x, title in zip(columns, ("Description", "Qty", "Unit price", "Amount"), strict=True):
        pdf.drawString(x, y, title)
    pdf.setFont("Helvetica", 11)
    for line in invoice.lines:
        y -= 20
        pdf.drawString(columns[0], y, line.description)
        pdf.drawString(columns[1], y, str(line.quantity))
        pdf.drawString(columns[2], y, money(line.unit_price))
        pdf.drawString(columns[3], y, money(line.amount))
    y -= 36
    for label, value in invoice.totals_lines():
        pdf.setFont("Helvetica-Bold" if label.startswith("Total") else "Helvetica", 11)
        pdf.drawString(330, y, label)
        pdf.drawString(470, y, value)
        y -= 20
    pdf.showPage()
    pdf.save()


def render_png(invoice: Invoice, path: Path) -> None:
    image = Image.new("RGB", (1654, 2339), "white")  # A4 at 200 dpi
    draw = ImageDraw.Draw(image)
    regular = ImageFont.load_default(size=36)
    large = ImageFont.load_default(size=52)
    y = 120
    for index, text in enumerate(invoice.text_lines()):
        draw.text((120, y), text, fill="black", font=large if index in (0, 3) else regular)
        y += 70 if index in (0, 3) else 56
    y += 40
    columns = (120, 900, 1060, 1320)
    for x, title in zip(columns, ("Description", "Qty", "Unit price", "Amount"), strict=True):
        draw.text((x, y), title, fill="black", font=regular)
    for line in invoice.lines:
        y += 60
        for x, text in zip(
            columns, (line.description, str(line.quantity), money(line.unit_price), money(line.amount)), strict=True
        ):
            draw.text((x, y), text, fill="black", font=regular)
    y += 110
    for label, value in invoice.totals_lines():
        draw.text((900, y), label, fill="black", font=regular)
        draw.text((1320, y), value, fill="black", font=regular)
        y += 60
    image.save(path, format="PNG", optimize=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parent.parent / "samples" / "invoices"
    parser.add_argument("out_dir", nargs="?", type=Path, default=default)
    out_dir: Path = parser.parse_args().out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for invoice in SAMPLES:
        document = out_dir / f"{invoice.file_stem}.{invoice.kind}"
        (render_pdf if invoice.kind == "pdf" else render_png)(invoice, document)
        truth = {
            "file": document.name,
            "mime_type": f"{'application/pdf' if invoice.kind == 'pdf' else 'image/png'}",
            "expected": invoice.truth(),
        }
        (out_dir / f"{invoice.file_stem}.json").write_text(json.dumps(truth, indent=2) + "\n")
        print(document)


if __name__ == "__main__":
    main()
