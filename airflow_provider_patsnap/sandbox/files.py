"""The report files the download host serves: a one-page PDF 1.4 and a minimal .docx, both written by
hand (standard library only) and byte-identical for the same job, so tests can compare exact bytes.
"""

from __future__ import annotations

import io
import zipfile
from typing import NamedTuple
from xml.sax.saxutils import escape as xml_escape


class ReportFormat(NamedTuple):
    extension: str
    mime_type: str


REPORT_FORMATS: dict[str, ReportFormat] = {
    "pdf": ReportFormat(".pdf", "application/pdf"),
    "word": ReportFormat(".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
}


def report_bytes(job_id: str, pn: str, report_type: str) -> bytes:
    """The exact bytes the download host serves for a job: a one-page PDF or a one-page .docx."""
    lines = (
        "PatSnap sandbox - patent value report (synthetic)",
        f"Patent: {pn}",
        f"Job: {job_id}",
        f"Format: {report_type}",
    )
    if report_type == "pdf":
        return _pdf(lines)
    if report_type == "word":
        return _docx(lines)
    raise ValueError(f"report_type must be 'word' or 'pdf', got {report_type!r}")


def _pdf_text(text: str) -> str:
    ascii_text = text.encode("ascii", "replace").decode("ascii")  # Helvetica/WinAnsi: keep it ASCII
    return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _pdf(lines: tuple[str, ...]) -> bytes:
    """A hand-written PDF 1.4: catalog, pages, page, content stream, font; xref offsets computed."""
    text_ops = "".join(
        f"BT /F1 {14 if index == 0 else 11} Tf 72 {760 - 24 * index} Td ({_pdf_text(line)}) Tj ET\n"
        for index, line in enumerate(lines)
    ).encode("ascii")
    objects = (
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(text_ops)).encode("ascii") + b" >>\nstream\n" + text_ops + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += b"".join(f"{offset:010d} 00000 n \n".encode("ascii") for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode(
        "ascii"
    )
    return bytes(out)


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/>'
    "</Relationships>"
)


def _docx_document(lines: tuple[str, ...]) -> str:
    paragraphs = "".join(f"<w:p><w:r><w:t>{xml_escape(line)}</w:t></w:r></w:p>" for line in lines)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{paragraphs}</w:body></w:document>"
    )


def _docx(lines: tuple[str, ...]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in (
            ("[Content_Types].xml", _CONTENT_TYPES),
            ("_rels/.rels", _RELS),
            ("word/document.xml", _docx_document(lines)),
        ):
            # A fixed timestamp keeps the bytes identical from run to run.
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()
