"""Records as they arrive on a ward, made here: text-layer PDFs as an EMR prints them (a header with the
patient on every page, 第 i 页 共 n 页), scanned pages and phone photos rendered with a CJK font, OFD archives,
CDA and FHIR documents. The tests and the scanned-record benchmark build their inputs with these; reportlab (test
extra) writes the PDFs with the standard Chinese CID font, so the text layer is real PDF text, not an image.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT_FILE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")  # fonts-noto-cjk, installed by setup.sh
PDF_FONT = "STSong-Light"
HEADER = "XX市第一人民医院 住院病历    姓名：张某某    住院号：20261234"
pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))


def wrap(text: str, fits) -> list[str]:
    """The record's paragraphs broken into the lines a printer makes, a character at a time (CJK has no spaces)."""
    lines = []
    for paragraph in text.splitlines():
        line = ""
        for char in paragraph:
            if line and not fits(line + char):
                lines.append(line)
                line = ""
            line += char
        lines.append(line)
    return [line for line in lines if line.strip()]


def text_pdf(pages: list[str], *, header: str = HEADER, page_numbers: bool = True, password: str | None = None) -> bytes:
    """A text-layer PDF with one page per text, 11 pt, the header and 第 i 页 共 n 页 as an EMR prints them."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, encrypt=password)
    for number, text in enumerate(pages, 1):
        if header:
            pdf.setFont(PDF_FONT, 9)
            pdf.drawString(72, 800, header)
        pdf.setFont(PDF_FONT, 11)
        y = 770.0
        for line in wrap(text, lambda s: pdfmetrics.stringWidth(s, PDF_FONT, 11) <= 450):
            pdf.drawString(72, y, line)
            y -= 16
        if page_numbers:
            pdf.setFont(PDF_FONT, 9)
            pdf.drawString(260, 40, f"第 {number} 页 共 {len(pages)} 页")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def page_images(text: str, dpi: int = 200, *, header: str = "", size_pt: float = 11) -> list[Image.Image]:
    """The text on as many A4 pages as it takes, as a scanner at ``dpi`` sees them: black on white, grey."""
    scale = dpi / 72
    width, height = int(595 * scale), int(842 * scale)
    font = ImageFont.truetype(str(FONT_FILE), int(size_pt * scale))
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    lines = wrap(text, lambda s: measure.textlength(s, font=font) <= 450 * scale)
    per_page = int((842 - 60 - 60) / (size_pt * 1.6))
    pages = []
    for first in range(0, max(1, len(lines)), per_page):
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        if header:
            draw.text((int(72 * scale), int(40 * scale)), header, font=ImageFont.truetype(str(FONT_FILE), int(9 * scale)),
                      fill=0)
        y = int(60 * scale)
        for line in lines[first:first + per_page]:
            draw.text((int(72 * scale), y), line, font=font, fill=0)
            y += int(size_pt * 1.6 * scale)
        pages.append(image)
    return pages


def page_image(text: str, dpi: int = 200, *, header: str = "", size_pt: float = 11) -> Image.Image:
    """The first page of ``page_images``: a short record on one page."""
    return page_images(text, dpi, header=header, size_pt=size_pt)[0]


def scan_of(page: Image.Image, *, angle: float = 0.6, noise: float = 12.0, jpeg_quality: int = 75) -> Image.Image:
    """A page through an office scanner: turned a little, speckled, JPEG-compressed."""
    import random

    turned = page.convert("L").rotate(angle, expand=False, fillcolor=255)
    rng = random.Random(7)
    speckled = turned.point(lambda v: v)  # a copy
    pixels = speckled.load()
    for _ in range(speckled.width * speckled.height // 400):
        x, y = rng.randrange(speckled.width), rng.randrange(speckled.height)
        pixels[x, y] = max(0, min(255, int(pixels[x, y] + rng.gauss(0, noise * 8))))
    out = io.BytesIO()
    speckled.save(out, "JPEG", quality=jpeg_quality)
    return Image.open(io.BytesIO(out.getvalue()))


def photo_of(page: Image.Image, *, angle: float = 2.5, blur: float = 0.8, jpeg_quality: int = 70) -> bytes:
    """A phone photo of a page: a little turned, soft, grey background at the edges, saved as JPEG."""
    turned = page.convert("L").rotate(angle, expand=True, fillcolor=200).filter(ImageFilter.GaussianBlur(blur))
    out = io.BytesIO()
    turned.save(out, "JPEG", quality=jpeg_quality)
    return out.getvalue()


def photo_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def image_bytes(image: Image.Image, kind: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def scanned_pdf(images: list[Image.Image]) -> bytes:
    """A PDF of page images only, as a scanner writes it: no text layer."""
    out = io.BytesIO()
    images[0].convert("RGB").save(out, "PDF", resolution=200, save_all=True,
                                  append_images=[i.convert("RGB") for i in images[1:]])
    return out.getvalue()


def garbled_pdf(image: Image.Image) -> bytes:
    """A page image under an invisible text layer that extracts as control codes, as text in a font without a
    ToUnicode map does: the text layer is there, and useless."""
    from reportlab.lib.utils import ImageReader

    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    pdf.drawImage(ImageReader(image), 0, 0, 595, 842)
    pdf.setFont("Helvetica", 10)
    font = pdf._doc.getInternalFontName("Helvetica")
    codes = "".join("\\%03o" % code for code in list(range(1, 31)) * 4)
    pdf._code.append(f"BT {font} 10 Tf 72 700 Td 3 Tr ({codes}) Tj ET")  # 3 Tr: invisible, as an OCR layer is
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def tiff_pages(images: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    images[0].save(out, "TIFF", save_all=True, append_images=images[1:], compression="tiff_deflate")
    return out.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    """A zip archive of these members (an OFD without its parts, a .docx that is an Excel workbook, ...)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


_OFD_NS = 'xmlns:ofd="http://www.ofdspec.org/2016"'


def ofd(pages: list[list[str]], *, drop_page: int | None = None) -> bytes:
    """An OFD file (GB/T 33190): OFD.xml → Document.xml → one Content.xml a page, one TextObject a line, the
    objects written in shuffled order (a writer's order is not the reading order; their boxes are)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("OFD.xml", f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD {_OFD_NS} Version="1.0">'
                                    "<ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>")
        entries = "".join(f'<ofd:Page ID="{i + 1}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(len(pages)))
        archive.writestr("Doc_0/Document.xml", f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document {_OFD_NS}>'
                                               f"<ofd:Pages>{entries}</ofd:Pages></ofd:Document>")
        for index, lines in enumerate(pages):
            if index == drop_page:
                continue
            objects = [f'<ofd:TextObject ID="{n}" Boundary="20 {20 + 6 * n} 170 5" Size="4">'
                       f'<ofd:TextCode X="0" Y="4">{line}</ofd:TextCode></ofd:TextObject>' for n, line in enumerate(lines)]
            objects = objects[1::2] + objects[::2]
            archive.writestr(f"Doc_0/Pages/Page_{index}/Content.xml",
                             f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page {_OFD_NS}><ofd:Content><ofd:Layer ID="0">'
                             + "".join(objects) + "</ofd:Layer></ofd:Content></ofd:Page>")
    return out.getvalue()


def cda(sections: list[tuple[str, str]], *, preamble: str = "") -> bytes:
    """A WS/T 500-style CDA document (出院小结) with one narrative section per (title, text)."""
    body = "".join(f"<component><section><title>{title}</title><text><paragraph>{text}</paragraph></text></section>"
                   "</component>" for title, text in sections)
    return (f'<?xml version="1.0" encoding="UTF-8"?>{preamble}<ClinicalDocument xmlns="urn:hl7-org:v3">'
            "<title>出院小结</title><recordTarget><patientRole><patient>"
            '<administrativeGenderCode code="1" displayName="男性"/><age unit="岁" value="68"/></patient></patientRole>'
            f"</recordTarget><component><structuredBody>{body}</structuredBody></component></ClinicalDocument>").encode()


def fhir_composition(sections: list[tuple[str, str]]) -> bytes:
    resource = {"resourceType": "Composition", "title": "出院小结", "status": "final",
                "section": [{"title": title, "text": {"status": "generated",
                                                      "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{text}</p></div>'}}
                            for title, text in sections]}
    return json.dumps(resource, ensure_ascii=False).encode()


def fhir_document_reference(data: bytes, content_type: str) -> bytes:
    resource = {"resourceType": "DocumentReference", "status": "current",
                "content": [{"attachment": {"contentType": content_type, "data": base64.b64encode(data).decode()}}]}
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}).encode()


# -- readers for the sandbox's own tests (run in the reader process, as the real ones are) -----------------------

def sleepy_reader(data: bytes, name: str, options: object, report) -> list:
    import time

    report(1, 2, "读取")
    time.sleep(float(data.decode()))
    return []


def hungry_reader(data: bytes, name: str, options: object, report) -> bytes:
    return bytes(int(data.decode()))  # more than the reader's memory bound: MemoryError in the child


def crashing_reader(data: bytes, name: str, options: object, report) -> None:
    import os

    os.abort()  # as a native parser dies on a malformed file


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds next to none: a decompression bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def content_bomb_pdf(inflated_mib: int) -> bytes:
    """A one-page PDF whose content stream, flate-compressed to a few hundred KB, inflates to ``inflated_mib`` MB of
    drawing operators (the bomb PDFium took to 16 GB)."""
    import zlib

    packer = zlib.compressobj(9)
    piece = b"0 0 m 1 1 l S\n" * 4096
    stream = b"".join(packer.compress(piece) for _ in range(inflated_mib * 1024 * 1024 // len(piece))) + packer.flush()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
