/* Every label the dashboard shows, in Vietnamese (default) and English. */
"use strict";

(function () {
  const STRINGS = {
    vi: {
      "app.name": "OpenShelf",
      "lang.switch": "English",
      "lang.switchLabel": "Switch the language to English",
      "login.title": "Đăng nhập nhân viên",
      "login.username": "Tên đăng nhập",
      "login.password": "Mật khẩu",
      "login.submit": "Đăng nhập",
      "login.wrong": "Sai tên đăng nhập hoặc mật khẩu.",
      "login.tooMany": "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau vài phút.",
      "login.missing": "Vui lòng nhập tên đăng nhập và mật khẩu.",
      "login.failed": "Không đăng nhập được. Vui lòng thử lại.",
      "board.title": "Bảng báo động — OpenShelf",
      "board.heading": "Báo động cổng an ninh",
      "board.alarms": "Báo động",
      "board.empty": "Chưa có báo động nào.",
      "board.logout": "Đăng xuất",
      "board.loadMore": "Xem thêm",
      "board.user": "{user} ({role})",
      "conn.connecting": "Đang kết nối…",
      "conn.live": "Trực tiếp",
      "conn.reconnecting": "Mất kết nối — đang kết nối lại…",
      "alarm.gate": "Cổng {gate}",
      "alarm.local": "Cổng tự quyết định",
      "alarm.snapshotAlt": "Ảnh chụp tại cổng {gate} lúc {time}",
      "alarm.noSnapshot": "Chưa có ảnh",
      "alarm.openSnapshot": "Xem ảnh lớn",
      "alarm.unknownItem": "Tài liệu không xác định",
      "alarm.evidenceProblem": "Sự cố ảnh: {problem}",
      "status.open": "Đang báo",
      "status.silenced": "Đã tắt chuông",
      "status.acknowledged": "Đã xử lý",
      "reason.not_on_loan": "Chưa mượn",
      "reason.in_library_only": "Chỉ đọc tại chỗ",
      "reason.unknown_tag": "Thẻ lạ",
      "reason.unreadable_tag": "Thẻ không đọc được",
      "reason.secured_tag": "Thẻ đang khóa",
      "reason.eas_alarm": "Báo động EAS",
      "outcome.returned_to_desk": "Đã mang về quầy",
      "outcome.checked_out": "Đã cho mượn",
      "outcome.false_alarm": "Báo nhầm",
      "outcome.patron_left": "Bạn đọc đã rời đi",
      "ack.group": "Xử lý báo động",
      "ack.note": "Ghi chú",
      "ack.silence": "Tắt chuông",
      "ack.done": "{user} đã xử lý lúc {time}: {outcome}",
      "ack.failed": "Không lưu được. Vui lòng thử lại.",
      "announce.new": "Báo động mới tại cổng {gate}: {title}",
      "snapshot.close": "Đóng",
      "devices.heading": "Thiết bị",
      "devices.id": "Mã",
      "devices.kind": "Loại",
      "devices.status": "Trạng thái",
      "devices.lastSeen": "Lần cuối",
      "devices.details": "Chi tiết",
      "devices.online": "Trực tuyến",
      "devices.offline": "Ngoại tuyến",
      "devices.unknown": "Chưa rõ",
      "role.security": "An ninh",
      "role.technician": "Kỹ thuật",
      "role.admin": "Quản trị",
    },
    en: {
      "app.name": "OpenShelf",
      "lang.switch": "Tiếng Việt",
      "lang.switchLabel": "Chuyển sang tiếng Việt",
      "login.title": "Staff login",
      "login.username": "Username",
      "login.password": "Password",
      "login.submit": "Log in",
      "login.wrong": "Wrong username or password.",
      "login.tooMany": "Too many failed logins. Please try again in a few minutes.",
      "login.missing": "Please enter your username and password.",
      "login.failed": "Could not log in. Please try again.",
      "board.title": "Alarm board — OpenShelf",
      "board.heading": "Security gate alarms",
      "board.alarms": "Alarms",
      "board.empty": "No alarms yet.",
      "board.logout": "Log out",
      "board.loadMore": "Show more",
      "board.user": "{user} ({role})",
      "conn.connecting": "Connecting…",
      "conn.live": "Live",
      "conn.reconnecting": "Connection lost — reconnecting…",
      "alarm.gate": "Gate {gate}",
      "alarm.local": "Decided at the gate",
      "alarm.snapshotAlt": "Snapshot at gate {gate} at {time}",
      "alarm.noSnapshot": "No snapshot yet",
      "alarm.openSnapshot": "Open the full snapshot",
      "alarm.unknownItem": "Unknown item",
      "alarm.evidenceProblem": "Snapshot problem: {problem}",
      "status.open": "Sounding",
      "status.silenced": "Silenced",
      "status.acknowledged": "Handled",
      "reason.not_on_loan": "Not checked out",
      "reason.in_library_only": "In-library use only",
      "reason.unknown_tag": "Unknown tag",
      "reason.unreadable_tag": "Unreadable tag",
      "reason.secured_tag": "Secured tag",
      "reason.eas_alarm": "EAS alarm",
      "outcome.returned_to_desk": "Brought back to the desk",
      "outcome.checked_out": "Checked out",
      "outcome.false_alarm": "False alarm",
      "outcome.patron_left": "Patron left",
      "ack.group": "Handle the alarm",
      "ack.note": "Note",
      "ack.silence": "Silence",
      "ack.done": "Handled by {user} at {time}: {outcome}",
      "ack.failed": "Could not save. Please try again.",
      "announce.new": "New alarm at gate {gate}: {title}",
      "snapshot.close": "Close",
      "devices.heading": "Devices",
      "devices.id": "ID",
      "devices.kind": "Kind",
      "devices.status": "Status",
      "devices.lastSeen": "Last seen",
      "devices.details": "Details",
      "devices.online": "Online",
      "devices.offline": "Offline",
      "devices.unknown": "Unknown",
      "role.security": "Security",
      "role.technician": "Technician",
      "role.admin": "Admin",
    },
  };
  const STORAGE_KEY = "openshelf.lang";
  const listeners = [];

  function current() {
    const saved = window.localStorage.getItem(STORAGE_KEY);
    return saved && STRINGS[saved] ? saved : "vi";
  }

  function t(key, params) {
    const table = STRINGS[current()];
    let text = key in table ? table[key] : (key in STRINGS.vi ? STRINGS.vi[key] : key);
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function has(key) {
    return key in STRINGS[current()];
  }

  function apply(root) {
    document.documentElement.lang = current();
    for (const element of (root || document).querySelectorAll("[data-i18n]")) {
      element.textContent = t(element.dataset.i18n);
    }
    for (const element of (root || document).querySelectorAll("[data-i18n-aria]")) {
      element.setAttribute("aria-label", t(element.dataset.i18nAria));
    }
  }

  function toggle() {
    window.localStorage.setItem(STORAGE_KEY, current() === "vi" ? "en" : "vi");
    apply(document);
    listeners.forEach((listener) => listener(current()));
  }

  function locale() {
    return current() === "vi" ? "vi-VN" : "en-GB";
  }

  function formatTime(iso) {
    return iso ? new Date(iso).toLocaleString(locale()) : "";
  }

  function setUpToggle(button) {
    const label = () => {
      button.textContent = t("lang.switch");
      button.setAttribute("aria-label", t("lang.switchLabel"));
      button.lang = current() === "vi" ? "en" : "vi";
    };
    label();
    listeners.push(label);
    button.addEventListener("click", toggle);
  }

  window.OpenShelfI18n = { t, has, apply, current, formatTime, setUpToggle, onChange: (f) => listeners.push(f) };
})();
