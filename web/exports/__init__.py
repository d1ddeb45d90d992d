"""The batch record as a document people read: the PDF (``pdf``), rendered from the
templates under web/templates/record/ that the batch page shares."""
