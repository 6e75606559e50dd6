"""The report: figures, notebook execution (papermill), assembly into HTML and PDF (nbconvert, Chromium)."""
