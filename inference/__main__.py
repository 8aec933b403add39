from inference.cli import main

# Guarded: the reader process for PDFs and scans (documents.sandbox) is spawned and imports this module again.
if __name__ == "__main__":
    raise SystemExit(main())
