"""ISO 28560-2 object identifiers (relative OIDs of the library data elements)."""

from __future__ import annotations

PRIMARY_ITEM_ID = 1
CONTENT_PARAMETER = 2
OWNER_INSTITUTION = 3
SET_INFORMATION = 4
TYPE_OF_USAGE = 5
TITLE = 17

FIRST_OPTIONAL_OID = 3  # the content parameter bitmap starts here
FIRST_EXTENDED_OID = 15  # precursor OID nibble 15 = "relative OID byte follows"
MAX_OID = FIRST_EXTENDED_OID + 0xFF

OID_NAMES: dict[int, str] = {
    1: "primary_item_id",
    2: "content_parameter",
    3: "owner_institution",
    4: "set_information",
    5: "type_of_usage",
    6: "shelf_location",
    7: "onix_media_format",
    8: "marc_media_format",
    9: "supplier_id",
    10: "order_number",
    11: "ill_borrowing_institution",
    12: "ill_borrowing_transaction_number",
    13: "gs1_product_id",
    14: "alternative_unique_item_id",
    15: "local_data_a",
    16: "local_data_b",
    17: "title",
    18: "product_id_local",
    19: "media_format_other",
    20: "supply_chain_stage",
    21: "supplier_invoice_number",
    22: "alternative_item_id",
    23: "alternative_owner_institution",
    24: "subsidiary_of_owner_institution",
    25: "alternative_ill_borrowing_institution",
    26: "local_data_c",
}

# Elements written with the ISIL code (compaction scheme 0).
ISIL_OIDS = frozenset({OWNER_INSTITUTION, 11})

# Elements copied as text into a TagData field of their own.
TAGDATA_FIELD_OF_OID: dict[int, str] = {
    6: "shelf_location",
    7: "media_format",
    8: "marc_media_format",
    9: "supplier_id",
    10: "order_number",
    11: "ill_borrowing_isil",
    12: "ill_borrowing_transaction",
    13: "gs1_product_id",
    14: "alternative_item_id",
    TITLE: "title",
}


def oid_name(oid: int) -> str:
    return OID_NAMES.get(oid, f"oid_{oid}")
