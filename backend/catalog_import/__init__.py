"""Catalog and patron import: MARC21 (binary and MARCXML) and CSV files into OpenShelf.

Reading and applying are separate steps.  The readers (:mod:`.marc`,
:mod:`.csv_items`, :mod:`.csv_patrons`) turn a file into validated records and a
list of problems, each with its position in the file; :mod:`.importer` applies
the good records through a :class:`~backend.catalog_import.sinks.CatalogSink`
in one transaction, so a file is either fully applied or not at all.
Re-importing updates records by their natural key (item barcode, patron card
barcode) instead of duplicating them.  See docs/import.md.

Nothing here is imported eagerly: ``pymarc`` is loaded only when a MARC file is read.
"""
