"""Every bound on what comes from outside, stated once: how much MedBrief reads of a file, a container, a table,
a model's header or a server's answer, and how long it waits. Each is enforced where that input is read; a
hostile or broken input meets one of these (one line, a documented exit code), never a traceback or an
exhausted ward PC. The README lists them with the reasons given here.
"""

from __future__ import annotations

MIB = 1024 * 1024

# -- records -----------------------------------------------------------------------------------------------
# A 17-page discharge record is about 60 KB of text; a .docx adds its images.
RECORD_FILE_BYTES = 10 * MIB
RECORD_CHARS = 100_000

# PDFs, scans and photos of pages are larger than text: a 17-page scanned record at 300 dpi is 10-40 MB, a phone
# photo 3-8 MB. Their pages are read in a child process (documents.sandbox) within a memory and time bound: OCR of
# an A4 page at 300 dpi peaks at 1.4 GB of address space and 0.7 GB resident, PDFium on a flate bomb had 16 GB.
RECORD_SCAN_FILE_BYTES = 100 * MIB
RECORD_PAGES = 200  # the default of the page-limit setting (max_record_pages)
RECORD_PAGES_CEILING = 2_000
READER_MEMORY_BYTES = 3 * 1024 * MIB
READER_PAGE_SECONDS = 120.0  # a page read (text layer or OCR) on the slowest ward PC; restarts at each page
IMAGE_PIXELS = 100_000_000  # read from an image's header before it is decoded: 30,000 x 30,000 is refused
OCR_PIXELS = 12_000_000  # a larger page or photo is scaled down to this before OCR (a phone's 48 MP photo)
PDF_RENDER_DPI = 300
FHIR_FILE_BYTES = 40 * MIB  # a DocumentReference carrying a scanned PDF in base64
PATIENT_FILES = 50  # files of a patient folder made one record (本院 PDF + 外院 scans)

# -- zip containers (.docx records, .xlsx tables) ------------------------------------------------------------
# Their members' sizes as the archive declares them are added up before anything is inflated: a 3 MB .docx
# that inflates to 3 GB is refused in milliseconds. A real .docx record is a few MB inflated, 北京临床版's .xlsx
# is 5 MB. The declared sizes cannot lie to us: zipfile stops reading a member at its declared size.
ZIP_MEMBERS = 5_000
ZIP_INFLATED_BYTES = 200 * MIB
ZIP_MEMBER_INFLATED_BYTES = 100 * MIB

# -- summaries given to `medbrief validate` --------------------------------------------------------------------
# A summary JSON, sources and statements included, is tens of KB; a long record's fused summary held 33
# diagnoses. 20,000 diagnoses took minutes to review.
SUMMARY_JSON_BYTES = 4 * MIB
SUMMARY_DIAGNOSES = 300
SUMMARY_EXAM_ITEMS = 600
SUMMARY_TEXT_CHARS = 50_000

# -- ICD ---------------------------------------------------------------------------------------------------
# The longest diagnosis string in CHIP-CDN (8,000 real ones) has 103 characters; a 10,000-character query took
# 78 s. 北京临床版 v6.01 has 40,473 rows; a lookup over several hundred thousand junk rows took 77 s and 2.6 GB.
QUERY_CHARS = 200
TABLE_FILE_BYTES = 64 * MIB
TABLE_ROWS = 120_000
TABLE_COLUMNS = 64
TABLE_CELL_CHARS = 500  # the longest name in any edition here is under 100 characters
BATCH_QUERY_FILE_BYTES = 16 * MIB
BATCH_QUERIES = 200_000

# -- models --------------------------------------------------------------------------------------------------
# A GGUF header is metadata and the tensor table: Qwen3-14B's is 6 MB, almost all of it the tokenizer's
# 151,936-entry vocabulary arrays.
GGUF_KEYS = 100_000
GGUF_TENSORS = 100_000
GGUF_STRING_BYTES = 16 * MIB
GGUF_ARRAY_ITEMS = 1 << 24
GGUF_ARRAY_DEPTH = 4  # GGUF nests arrays one level; a header of 50,000 nested arrays is refused, not recursed
CHAT_TEMPLATE_BYTES = 256 * 1024
CONFIG_FILE_BYTES = 1 * MIB

# -- the department's model server ------------------------------------------------------------------------
# One call streams a summary or an ICD round (at most max_tokens, 16,384 by the settings' bound); the server
# is given the call's seconds of silence (server_timeout_s) between chunks and this much in all.
SERVER_CALL_S = 1800.0
SERVER_ANSWER_BYTES = 16 * MIB  # a whole answer read at once (/v1/models, /tokenize)
SERVER_STREAM_BYTES = 64 * MIB  # all the chunks of one streamed call
SERVER_LINE_BYTES = 1 * MIB
CA_BUNDLE_BYTES = 4 * MIB  # a CA bundle for the server backend (the system bundle is about 0.2 MB)

# -- batch ---------------------------------------------------------------------------------------------------
BATCH_RECORDS = 100_000

# -- cohort queries ------------------------------------------------------------------------------------------
# A clinical question is a few conditions ("I50* and LVEF<40% and NT-proBNP>=1000 pg/mL": 40 characters); each
# condition is one more subquery over the value index.
COHORT_QUERY_CHARS = 500
COHORT_CONDITIONS = 10
