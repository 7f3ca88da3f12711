"""Where a MARC export keeps its items: the holdings tag and what each subfield means.

Koha exports one 952 field per item (``$p`` barcode, ``$o`` call number, ``$y``
item type, ``$a``/``$b`` home/holding branch, ``$c`` shelving location, ``$7``
not for loan, ``$1`` lost, ``$0`` withdrawn) and the record's default item type
in 942 ``$c``.  VietBiblio is Koha-based and is assumed to export the same
(unconfirmed).  The Libol preset follows the MARC21 852 holdings layout
(``$a`` institution, ``$b`` sublocation/store, ``$c`` shelving location,
``$h``/``$i`` call number, ``$p`` barcode, i.e. the accession number "số ĐKCB");
which subfields a given Libol export really fills is unconfirmed — check one
exported record and, if it differs, give a YAML map (see docs/import.md).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.catalog_import.errors import ImportFileError

_TAG = r"^[0-9A-Za-z]{3}$"
_CODE = r"^[0-9a-z]$"


class HoldingsMap(BaseModel):
    """Which subfields of the holdings field hold what (``None``: not present in this export)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    tag: str = Field(default="952", pattern=_TAG)
    barcode: str = Field(default="p", pattern=_CODE)
    call_number: tuple[str, ...] = ("o",)
    item_type: str | None = Field(default="y", pattern=_CODE)
    home_branch: str | None = Field(default="a", pattern=_CODE)
    holding_branch: str | None = Field(default="b", pattern=_CODE)
    location: str | None = Field(default="c", pattern=_CODE)
    not_for_loan: str | None = Field(default="7", pattern=_CODE,
                                     description="Koha convention: 0 loanable, >0 not for loan, <0 on order")
    lost: str | None = Field(default="1", pattern=_CODE, description="non-zero: lost")
    withdrawn: str | None = Field(default="0", pattern=_CODE, description="non-zero: withdrawn")
    parts: str | None = Field(default=None, pattern=_CODE, description="number of pieces, when the export has it")
    tag_uid: str | None = Field(default=None, pattern=_CODE, description="RFID tag UID, when the export has it")
    record_item_type: tuple[str, str] | None = Field(default=("942", "c"),
                                                      description="the record's default item type (tag, subfield)")
    record_call_number_tags: tuple[str, ...] = Field(
        default=("090", "099", "082", "080"),
        description="first of these with $a gives the record's call number ($a and $b); local call numbers first")
    item_types: dict[str, str] = Field(
        default_factory=lambda: {"BK": "book", "REF": "reference"},
        description="the export's item type codes → OpenShelf item types; others are lower-cased")


KOHA = HoldingsMap(name="koha")
VIETBIBLIO = HoldingsMap(name="vietbiblio")
LIBOL = HoldingsMap(
    name="libol", tag="852", barcode="p", call_number=("h", "i"), item_type=None, home_branch="a",
    holding_branch=None, location="b", not_for_loan=None, lost=None, withdrawn=None, record_item_type=None,
    item_types={},
)
PRESETS: dict[str, HoldingsMap] = {preset.name: preset for preset in (KOHA, VIETBIBLIO, LIBOL)}


def load_holdings_map(name_or_path: str | Path) -> HoldingsMap:
    """A preset by name (koha, vietbiblio, libol) or a YAML file with :class:`HoldingsMap` fields."""
    preset = PRESETS.get(str(name_or_path).lower())
    if preset is not None:
        return preset
    path = Path(name_or_path)
    if not path.is_file():
        raise ImportFileError(f"holdings map {name_or_path!r} is neither a preset "
                              f"({', '.join(PRESETS)}) nor a YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return HoldingsMap.model_validate({"name": path.stem, **data})
    except (yaml.YAMLError, ValidationError, TypeError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"holdings map {path}: {exc}") from exc
