"""The demo library: a small catalogue, one patron and their tags.

Shared by the backend (which seeds its database from it for ``openshelf demo``)
and the simulators (which put the matching tags on the simulated readers), so
that a scripted walk with ``I0003`` carries exactly the tag the backend knows.
"""

from __future__ import annotations

from dataclasses import dataclass

DEMO_COUNTRY = "VN"
DEMO_ISIL_LIBRARY = "HN0001"  # owner ISIL VN-HN0001, a made-up provincial library
DEMO_PATRON_BARCODE = "P0001"
DEMO_PATRON_PIN = "1234"
DEMO_TERMINAL_LOGIN = ("sc1", "sc1")


@dataclass(frozen=True)
class DemoItem:
    item_id: str
    title: str
    author: str
    parts: int = 1
    in_library_only: bool = False
    on_loan_to: str | None = None


DEMO_ITEMS: tuple[DemoItem, ...] = (
    DemoItem("I0001", "Truyện Kiều", "Nguyễn Du"),
    DemoItem("I0002", "Số đỏ", "Vũ Trọng Phụng", on_loan_to=DEMO_PATRON_BARCODE),
    DemoItem("I0003", "Dế Mèn phiêu lưu ký", "Tô Hoài"),
    DemoItem("I0004", "Tắt đèn", "Ngô Tất Tố"),
    DemoItem("I0005", "Chí Phèo", "Nam Cao", on_loan_to=DEMO_PATRON_BARCODE),
    DemoItem("I0006", "Nỗi buồn chiến tranh", "Bảo Ninh"),
    DemoItem("I0007", "Đất rừng phương Nam", "Đoàn Giỏi"),
    DemoItem("I0008", "Từ điển Tiếng Việt", "Viện Ngôn ngữ học", in_library_only=True),
    DemoItem("I0009", "Việt Nam sử lược", "Trần Trọng Kim", parts=2),
    DemoItem("I0010", "Vợ nhặt", "Kim Lân"),
    DemoItem("I0011", "Những ngôi sao xa xôi", "Lê Minh Khuê"),
    DemoItem("I0012", "Cánh đồng bất tận", "Nguyễn Ngọc Tư"),
    DemoItem("I0013", "Mắt biếc", "Nguyễn Nhật Ánh"),
    DemoItem("I0014", "Tôi thấy hoa vàng trên cỏ xanh", "Nguyễn Nhật Ánh"),
    DemoItem("I0015", "Nhật ký Đặng Thùy Trâm", "Đặng Thùy Trâm"),
    DemoItem("I0016", "Thương nhớ mười hai", "Vũ Bằng"),
    DemoItem("I0017", "Vang bóng một thời", "Nguyễn Tuân"),
    DemoItem("I0018", "Gió lạnh đầu mùa", "Thạch Lam"),
    DemoItem("I0019", "Bỉ vỏ", "Nguyên Hồng"),
    DemoItem("I0020", "Người mẹ cầm súng", "Nguyễn Thi"),
)


def demo_item(item_id: str) -> DemoItem:
    for item in DEMO_ITEMS:
        if item.item_id == item_id:
            return item
    raise KeyError(f"{item_id} is not in the demo catalogue (I0001-I0020)")


def tag_uid_for(item_id: str, part: int = 1) -> str:
    """A stable ISO 15693 UID (NXP ICODE SLIX prefix E004 01) for a demo item's tag."""
    number = int(item_id.lstrip("I") or "0")
    return f"E0040100{number:06X}{part:02X}"
