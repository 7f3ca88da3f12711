"""HF RFID for libraries: tag data models (``rfid.tagdata``), reader drivers, the reader service."""

from rfid.tagdata import decode

__all__ = ["decode"]
