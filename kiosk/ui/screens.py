"""Builds the widget tree for one :class:`~kiosk.view.KioskView`.

Nothing here decides anything: texts come translated in the view, every button
calls one controller method. Each button is registered under a stable name
(``start.borrow``, ``keypad.7``, ``finish``…) so tests can press it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk.i18n import Translator
from kiosk.session import Purpose
from kiosk.ui import theme
from kiosk.ui.widgets import Cover, KioskButton, Panel, QrCode, StatusIcon, Text
from kiosk.view import Icon, ItemView, KioskView, Screen

_ICON_COLOURS = {Icon.DONE: theme.DONE, Icon.ERROR: theme.ERROR, Icon.WARNING: theme.WARNING}


class Actions(Protocol):
    """The controller methods the screens call."""

    def set_language(self, language: str) -> None: ...
    def choose(self, purpose: Purpose) -> None: ...
    def cancel(self) -> None: ...
    def finish(self) -> None: ...
    def keypad_digit(self, digit: str) -> None: ...
    def keypad_delete(self) -> None: ...
    def keypad_submit(self) -> None: ...
    def renew(self, item_id: str | None) -> None: ...
    def back_to_pad(self) -> None: ...
    def finish_anyway(self) -> None: ...
    def print_receipt(self) -> None: ...
    def email_receipt(self) -> None: ...
    def done(self) -> None: ...
    def acknowledge(self) -> None: ...
    def technician_tap(self) -> None: ...


@dataclass(frozen=True)
class _ItemRow:
    """The widgets of one item row that change while the item is worked on."""

    cover: Cover
    title: Text
    subtitle: Text
    icon: StatusIcon
    status: Text

    def show(self, item: ItemView) -> None:
        self.cover.show(item.cover_letter, item.cover_hue)
        self.title.show(item.title)
        self.subtitle.show(item.subtitle)
        self.icon.show(item.icon)
        self.status.show(item.status, _ICON_COLOURS.get(item.icon, theme.TEXT))


class ScreenBuilder:
    def __init__(self, view: KioskView, metrics: theme.Metrics, t: Translator, actions: Actions) -> None:
        self.view = view
        self.m = metrics
        self.t = t
        self.actions = actions
        self.countdown_label: Text | None = None
        self._summary_label: Text | None = None
        self._item_column: BoxLayout | None = None
        self._item_scroll: ScrollView | None = None
        self._rows: dict[str, _ItemRow] = {}

    def update_rows(self, view: KioskView) -> list[Widget] | None:
        """Show ``view`` by changing the built page's item rows in place and adding its new rows at the end.

        Only for a view that differs from the built one in nothing else (:meth:`KioskView.only_rows_differ`).
        Returns the rows added, or None when this page has no item list to update (build a new page then).
        A whole page of ten rows costs ~1,200 labels to rebuild; a book's new status costs one or two.
        """
        column, scroll = self._item_column, self._item_scroll
        if column is None or scroll is None or not view.only_rows_differ(self.view):
            return None
        added: list[Widget] = []
        shown = {item.key: item for item in self.view.items}
        for item in view.items:
            row = self._rows.get(item.key)
            if row is None:
                added.append(self._item_row(item))
                column.add_widget(added[-1])
            elif item != shown.get(item.key):
                row.show(item)
        if self._summary_label is not None:
            self._summary_label.show(view.summary)
        if added:
            scroll.scroll_y = 0  # as a new page shows it: the newest item at the bottom
        self.view = view
        return added

    # ------------------------------------------------------------------ frame

    def build(self) -> BoxLayout:
        view, m = self.view, self.m
        root = Panel(theme.BACKGROUND, orientation="vertical")
        root.add_widget(self._top_bar())
        if view.offline:
            banner = Panel(theme.OFFLINE, size_hint_y=None, height=m.u(7), padding=(m.pad, 0))
            banner.add_widget(Text(view.offline_text, size=m.small, colour=theme.OFFLINE_TEXT, bold=True,
                                   name="offline.banner"))
            root.add_widget(banner)
        body = BoxLayout(orientation="vertical", padding=(m.u(4), m.u(2.5)), spacing=m.u(2))
        getattr(self, f"_{view.screen.value}")(body)
        root.add_widget(body)
        if view.in_session:
            root.add_widget(self._bottom_bar())
        return root

    def button(self, name: str, text: str, action: Callable[[], None], *, colour: theme.Colour = theme.PRIMARY,
               text_colour: theme.Colour = theme.PRIMARY_TEXT, size: float | None = None, enabled: bool = True,
               **kwargs: Any) -> KioskButton:
        widget = KioskButton(text, name=name, on_press=action, size=size or self.m.body, colour=colour,
                             text_colour=text_colour, radius=kwargs.pop("radius", self.m.u(1.5)), enabled=enabled,
                             **kwargs)
        return widget

    def _top_bar(self) -> Panel:
        m, view = self.m, self.view
        bar = Panel(theme.BAR, size_hint_y=None, height=m.u(11), padding=(m.pad, m.u(1.5)), spacing=m.pad)
        library = self.button("technician", view.library, self.actions.technician_tap, colour=theme.BAR,
                              text_colour=theme.BAR_TEXT, size=m.body, radius=0)
        library.halign = "left"
        bar.add_widget(library)
        for language in self.t.languages:
            chosen = language == view.language
            bar.add_widget(self.button(
                f"lang.{language}", self.t(f"lang.{language}"), lambda lang=language: self.actions.set_language(lang),
                colour=theme.BACKGROUND if chosen else theme.BAR, text_colour=theme.BAR if chosen else theme.BAR_TEXT,
                size=m.small, size_hint_x=None, width=m.u(26)))
        return bar

    def _bottom_bar(self) -> Panel:
        m, view = self.m, self.view
        bar = Panel(theme.SECONDARY, size_hint_y=None, height=m.u(13), padding=(m.u(4), m.u(1.5)), spacing=m.u(3))
        self.countdown_label = Text(view.countdown_text, size=m.small, colour=theme.SECONDARY_TEXT, name="countdown")
        bar.add_widget(self.countdown_label)
        if view.screen in (Screen.IDENTIFY, Screen.PIN):
            bar.add_widget(self.button("cancel", self.t("button.cancel"), self.actions.cancel, colour=theme.BACKGROUND,
                                       text_colour=theme.SECONDARY_TEXT, size_hint_x=None, width=m.u(36)))
        if view.can_finish:
            bar.add_widget(self.button("finish", self.t("button.finish"), self.actions.finish,
                                       size_hint_x=None, width=m.u(44), enabled=not view.busy))
        return bar

    def _heading(self, body: BoxLayout, text: str, instruction: str = "") -> None:
        body.add_widget(Text(text, size=self.m.heading, bold=True, fit=True, name="heading"))
        if instruction:
            body.add_widget(Text(instruction, size=self.m.body, colour=theme.MUTED_TEXT, fit=True,
                                 name="instruction"))

    def _notice(self, body: BoxLayout, *, height: float | None = None) -> None:
        view, m = self.view, self.m
        row = BoxLayout(size_hint_y=None, height=height or m.u(9), spacing=m.pad)
        if view.notice:
            row.add_widget(StatusIcon(view.notice_icon, size_hint_x=None, width=m.u(7)))
            row.add_widget(Text(view.notice, size=m.body, colour=_ICON_COLOURS.get(view.notice_icon, theme.TEXT),
                                bold=True, name="notice"))
        body.add_widget(row)

    # ------------------------------------------------------------------ screens

    def _start(self, body: BoxLayout) -> None:
        m, t = self.m, self.t
        body.add_widget(Text(self.view.heading, size=m.u(7), bold=True, align="center", fit=True, name="heading"))
        body.add_widget(Text(self.view.instruction, size=m.body, colour=theme.MUTED_TEXT, align="center", fit=True))
        row = BoxLayout(spacing=m.u(4), padding=(0, m.u(2)))
        for purpose in (Purpose.BORROW, Purpose.RETURN, Purpose.ACCOUNT):
            key = purpose.value
            label = (f"[size={int(m.u(6.5))}]{t(f'start.{key}')}[/size]\n\n"
                     f"[size={int(m.small)}][b]{t(f'start.{key}_hint')}[/b][/size]")
            button = self.button(f"start.{key}", label, lambda chosen=purpose: self.actions.choose(chosen),
                                 colour=theme.PRIMARY if purpose is Purpose.BORROW else theme.SECONDARY,
                                 text_colour=theme.PRIMARY_TEXT if purpose is Purpose.BORROW else theme.SECONDARY_TEXT)
            button.markup = True
            row.add_widget(button)
        body.add_widget(row)
        body.add_widget(Text(t("start.card_hint"), size=m.body, align="center", fit=True, name="card_hint"))

    def _identify(self, body: BoxLayout) -> None:
        m, view = self.m, self.view
        self._heading(body, view.heading)
        row = BoxLayout(spacing=m.u(4))
        row.add_widget(_CardPicture(size_hint_x=0.35))
        row.add_widget(Text(view.instruction, size=m.u(4.6), bold=True, name="instruction"))
        body.add_widget(row)
        self._notice(body, height=m.u(14))

    def _pin(self, body: BoxLayout) -> None:
        self._keypad_screen(body, masked_name="pin.dots")

    def _technician(self, body: BoxLayout) -> None:
        self._keypad_screen(body, masked_name="technician.dots")

    def _keypad_screen(self, body: BoxLayout, masked_name: str) -> None:
        m, view = self.m, self.view
        row = BoxLayout(spacing=m.u(5))
        left = BoxLayout(orientation="vertical", spacing=m.pad)
        self._heading(left, view.heading, view.instruction)
        dots = "• " * view.keypad_length
        field = Panel(theme.ROW, radius=m.u(1.5), size_hint_y=None, height=m.u(12), padding=(m.pad, 0))
        field.add_widget(Text(dots, size=m.u(6), bold=True, align="center", name=masked_name))
        left.add_widget(field)
        self._notice(left, height=m.u(16))
        left.add_widget(Widget())
        row.add_widget(left)
        row.add_widget(self._keypad())
        body.add_widget(row)

    def _keypad(self) -> GridLayout:
        m, t = self.m, self.t
        grid = GridLayout(cols=3, spacing=m.u(1.5), size_hint_x=None, width=m.u(66))
        for digit in "123456789":
            grid.add_widget(self.button(f"keypad.{digit}", digit, lambda d=digit: self.actions.keypad_digit(d),
                                        colour=theme.SECONDARY, text_colour=theme.SECONDARY_TEXT, size=m.u(5.5)))
        grid.add_widget(self.button("keypad.delete", t("keypad.delete"), self.actions.keypad_delete,
                                    colour=theme.SECONDARY, text_colour=theme.SECONDARY_TEXT, size=m.small))
        grid.add_widget(self.button("keypad.0", "0", lambda: self.actions.keypad_digit("0"), colour=theme.SECONDARY,
                                    text_colour=theme.SECONDARY_TEXT, size=m.u(5.5)))
        grid.add_widget(self.button("keypad.ok", t("keypad.ok"), self.actions.keypad_submit, size=m.body,
                                    enabled=not self.view.busy))
        return grid

    def _borrow(self, body: BoxLayout) -> None:
        self._desk(body)

    def _return(self, body: BoxLayout) -> None:
        self._desk(body)

    def _desk(self, body: BoxLayout) -> None:
        m, view = self.m, self.view
        header = BoxLayout(size_hint_y=None, height=m.u(9), spacing=m.pad)
        header.add_widget(Text(view.heading, size=m.heading, bold=True, size_hint_x=0.4, name="heading"))
        self._summary_label = Text(view.summary, size=m.body, bold=True, align="right", name="summary")
        header.add_widget(self._summary_label)
        body.add_widget(header)
        body.add_widget(Text(view.instruction, size=m.body, colour=theme.MUTED_TEXT, fit=True, name="instruction"))
        body.add_widget(self._item_list(view.items))
        if view.notice:
            self._notice(body, height=m.u(7))

    def _item_list(self, items: tuple[ItemView, ...]) -> ScrollView:
        m = self.m
        scroll = _scroller(m)
        column = BoxLayout(orientation="vertical", size_hint_y=None, spacing=m.u(1.2))
        column.bind(minimum_height=column.setter("height"))
        for item in items:
            column.add_widget(self._item_row(item))
        scroll.add_widget(column)
        scroll.scroll_y = 0  # the newest item is at the bottom
        self._item_column, self._item_scroll = column, scroll
        return scroll

    def _item_row(self, item: ItemView) -> Panel:
        m = self.m
        row = Panel(theme.ROW, radius=m.u(1.2), size_hint_y=None, height=m.u(13.5), padding=(m.u(1.5), m.u(1)),
                    spacing=m.pad, name=f"item:{item.key}")
        cover = Cover(item.cover_letter, item.cover_hue, size_px=m.u(11.5))
        row.add_widget(cover)
        titles = BoxLayout(orientation="vertical", size_hint_x=0.5)
        title = Text(item.title, size=m.body, bold=True, shorten=True, name=f"item.title:{item.key}")
        subtitle = Text(item.subtitle, size=m.small, colour=theme.MUTED_TEXT, shorten=True)
        titles.add_widget(title)
        titles.add_widget(subtitle)
        row.add_widget(titles)
        icon = StatusIcon(item.icon, size_hint_x=None, width=m.u(8), name=f"item.icon:{item.key}")
        row.add_widget(icon)
        status = Text(item.status, size=m.small, colour=_ICON_COLOURS.get(item.icon, theme.TEXT), bold=True,
                      size_hint_x=0.5, name=f"item.status:{item.key}")
        row.add_widget(status)
        self._rows[item.key] = _ItemRow(cover, title, subtitle, icon, status)
        return row

    def _finish_check(self, body: BoxLayout) -> None:
        m, view, t = self.m, self.view, self.t
        self._heading(body, view.heading, view.instruction)
        body.add_widget(self._item_list(view.items))
        buttons = BoxLayout(size_hint_y=None, height=m.button, spacing=m.u(4))
        buttons.add_widget(self.button("finish_check.back", t("finish_check.back"), self.actions.back_to_pad))
        buttons.add_widget(self.button("finish_check.leave", t("finish_check.leave"), self.actions.finish_anyway,
                                       colour=theme.SECONDARY, text_colour=theme.SECONDARY_TEXT))
        body.add_widget(buttons)

    def _account(self, body: BoxLayout) -> None:
        m, view, t = self.m, self.view, self.t
        body.add_widget(Text(view.heading, size=m.heading, bold=True, fit=True, name="heading"))
        account = view.account
        if account is None:
            body.add_widget(Text(view.instruction, size=m.body, name="instruction"))
            self._notice(body)
            return
        columns = BoxLayout(spacing=m.u(4))
        loans = BoxLayout(orientation="vertical", spacing=m.u(1.2), size_hint_x=0.58)
        loans.add_widget(Text(t("account.loans"), size=m.body, bold=True, fit=True))
        column = BoxLayout(orientation="vertical", size_hint_y=None, spacing=m.u(1.2))
        column.bind(minimum_height=column.setter("height"))
        for loan in account.loans:
            row = Panel(theme.ROW, radius=m.u(1.2), size_hint_y=None, height=m.u(12), padding=(m.u(1.5), m.u(1)),
                        spacing=m.pad)
            texts = BoxLayout(orientation="vertical")
            texts.add_widget(Text(loan.title, size=m.body, bold=True, shorten=True))
            texts.add_widget(Text(loan.due, size=m.small, colour=theme.ERROR if loan.overdue else theme.MUTED_TEXT,
                                  bold=loan.overdue, shorten=True, name=f"loan.due:{loan.item_id}"))
            row.add_widget(texts)
            row.add_widget(self.button(f"account.renew:{loan.item_id}", t("account.renew"),
                                       lambda item_id=loan.item_id: self.actions.renew(item_id), size=m.small,
                                       size_hint_x=None, width=m.u(24), enabled=not view.busy))
            column.add_widget(row)
        if not account.loans:
            column.add_widget(Text(t("account.no_loans"), size=m.body, fit=True))
        scroll = _scroller(m)
        scroll.add_widget(column)
        loans.add_widget(scroll)
        if account.loans:
            loans.add_widget(self.button("account.renew_all", t("account.renew_all"), lambda: self.actions.renew(None),
                                         size_hint_y=None, height=m.u(10), enabled=not view.busy))
        columns.add_widget(loans)
        columns.add_widget(self._holds_and_fines())
        body.add_widget(columns)
        self._notice(body, height=m.u(7))

    def _holds_and_fines(self) -> BoxLayout:
        m, t, account = self.m, self.t, self.view.account
        assert account is not None
        side = BoxLayout(orientation="vertical", spacing=m.u(1.2), size_hint_x=0.42)
        side.add_widget(Text(t("account.holds"), size=m.body, bold=True, fit=True))
        for hold in account.holds:
            row = Panel(theme.ROW, radius=m.u(1.2), orientation="vertical", size_hint_y=None, height=m.u(11),
                        padding=(m.u(1.5), m.u(0.8)))
            row.add_widget(Text(hold.title, size=m.body, bold=True, shorten=True))
            row.add_widget(Text(hold.status, size=m.small, colour=theme.DONE if hold.ready else theme.MUTED_TEXT,
                                bold=hold.ready, shorten=True, name=f"hold.status:{hold.item_id}"))
            side.add_widget(row)
        if not account.holds:
            side.add_widget(Text(t("account.no_holds"), size=m.body, fit=True))
        side.add_widget(Widget())
        side.add_widget(Text(account.fines, size=m.body, bold=True, fit=True, name="account.fines"))
        return side

    def _receipt(self, body: BoxLayout) -> None:
        m, view, t = self.m, self.view, self.t
        receipt = view.receipt
        assert receipt is not None
        body.add_widget(Text(view.heading, size=m.heading, bold=True, fit=True, name="heading"))
        columns = BoxLayout(spacing=m.u(4))
        paper = Panel(theme.ROW, radius=m.u(1.2), padding=(m.u(2), m.u(1.5)))
        scroll = _scroller(m)
        scroll.add_widget(Text("\n".join(receipt.lines), size=m.small, fit=True, name="receipt.text"))
        paper.add_widget(scroll)
        columns.add_widget(paper)
        side = BoxLayout(orientation="vertical", spacing=m.u(1.2), size_hint_x=None, width=m.u(56))
        qr = QrCode(receipt.qr_payload, name="receipt.qr") if receipt.qr_payload else None
        if qr is not None and qr.available:
            side.add_widget(qr)  # takes the height the buttons leave
            side.add_widget(Text(view.instruction, size=m.small, align="center", fit=True))
        else:
            side.add_widget(Widget())
        if view.notice:
            side.add_widget(Text(view.notice, size=m.small, bold=True, fit=True, name="notice",
                                 colour=_ICON_COLOURS.get(view.notice_icon, theme.TEXT)))
        if receipt.can_print:
            side.add_widget(self.button("receipt.print", t("receipt.print"), self.actions.print_receipt,
                                        colour=theme.SECONDARY, text_colour=theme.SECONDARY_TEXT,
                                        size_hint_y=None, height=m.u(9), enabled=not view.busy))
        if receipt.can_email:
            side.add_widget(self.button("receipt.email", t("receipt.email"), self.actions.email_receipt,
                                        colour=theme.SECONDARY, text_colour=theme.SECONDARY_TEXT,
                                        size_hint_y=None, height=m.u(9), enabled=not view.busy))
        side.add_widget(self.button("receipt.done", t("receipt.done"), self.actions.done, size_hint_y=None,
                                    height=m.u(9)))
        columns.add_widget(side)
        body.add_widget(columns)

    def _message(self, body: BoxLayout) -> None:
        m, view, t = self.m, self.view, self.t
        body.add_widget(Widget(size_hint_y=0.15))
        row = BoxLayout(spacing=m.u(4), size_hint_y=0.6)
        row.add_widget(StatusIcon(view.notice_icon, size_hint_x=None, width=m.u(22)))
        texts = BoxLayout(orientation="vertical", spacing=m.u(3))
        texts.add_widget(Text(view.heading, size=m.u(5), bold=True, colour=_ICON_COLOURS.get(view.notice_icon,
                                                                                             theme.TEXT),
                              valign="bottom", name="message"))
        texts.add_widget(Text(view.instruction, size=m.body, valign="top", name="message.next"))
        row.add_widget(texts)
        body.add_widget(row)
        anchor = AnchorLayout(anchor_x="center", size_hint_y=0.25)
        anchor.add_widget(self.button("message.ok", t("button.ok"), self.actions.acknowledge, size_hint=(None, None),
                                      width=m.u(44), height=m.button))
        body.add_widget(anchor)


def _scroller(m: theme.Metrics) -> ScrollView:
    """A vertical list; content shorter than the view stays at its top (Kivy's overscroll default would put
    it at the bottom once scrolled there)."""
    return ScrollView(do_scroll_x=False, bar_width=m.u(1.2), scroll_type=["bars", "content"], always_overscroll=False)


class _CardPicture(Widget):
    """A library card being placed on the reader (drawn, no image files)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(pos=self._draw, size=self._draw)

    def _draw(self, *_: Any) -> None:
        from kivy.graphics import Color, Line, Rectangle, RoundedRectangle

        self.canvas.clear()
        width = min(self.width * 0.8, self.height * 1.1)
        height = width * 0.63
        # From pos and size: ``center`` may still hold the old value inside this callback.
        left = self.x + (self.width - width) / 2
        bottom = self.y + (self.height - height) / 2
        with self.canvas:
            Color(*theme.SECONDARY)
            RoundedRectangle(pos=(left - width * 0.08, bottom - height * 0.35), size=(width * 1.16, height * 0.3),
                             radius=[height * 0.06])
            Color(*theme.PRIMARY)
            RoundedRectangle(pos=(left, bottom), size=(width, height), radius=[height * 0.08])
            Color(*theme.BACKGROUND)
            Rectangle(pos=(left + width * 0.08, bottom + height * 0.62), size=(width * 0.5, height * 0.1))
            for index in range(9):
                stripe = left + width * (0.08 + index * 0.05)
                Line(points=[stripe, bottom + height * 0.15, stripe, bottom + height * 0.42],
                     width=max(1.0, width * (0.004 + 0.006 * (index % 3))))
