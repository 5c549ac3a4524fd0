"""File formats and file handling: the CTC layout (``ctc``), affinity files (``affinities``),
foreground probability files (``foreground``), result tables and JSON (``results``), and atomic
writes and output folders (``files``)."""
