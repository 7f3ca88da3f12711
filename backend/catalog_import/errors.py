"""Exceptions of the catalog import.

A bad record is not an exception: it becomes a :class:`~backend.catalog_import.report.RecordProblem`
and is skipped.  These errors mean the whole file cannot be imported.
"""

from __future__ import annotations


class CatalogImportError(Exception):
    """Base class of every error raised by :mod:`backend.catalog_import`."""


class ImportFileError(CatalogImportError):
    """The file cannot be read at all: wrong format, wrong encoding, unusable header."""


class SinkUnavailableError(CatalogImportError):
    """There is no catalog to import into (e.g. the database sink is not wired yet)."""


class SinkUsageError(CatalogImportError):
    """A sink was used outside ``with sink.transaction():``."""
