import multiprocessing

from inference.cli import main

# The reader process for PDFs and scans (documents.sandbox) is this executable started again: freeze_support
# makes that start run the reader, not the app.
if __name__ == "__main__":
    multiprocessing.freeze_support()
    raise SystemExit(main())
