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
      "occupancy.heading": "Số người trong thư viện",
      "occupancy.total": "Tổng cộng",
      "occupancy.gate": "Cổng {gate}",
      "occupancy.inOut": "Vào {entries} · Ra {exits}",
      "occupancy.since": "Tính từ {time}",
      "occupancy.drift": "Số lượt ra nhiều hơn lượt vào ({net}): số đếm bị lệch, tạm hiển thị 0.",
      "occupancy.beamFault": "Cảm biến cổng bị lỗi — số đếm có thể sai.",
      "live.heading": "Xem trực tiếp",
      "live.notice": "Mỗi lượt xem đều được ghi vào nhật ký.",
      "live.none": "Chưa cấu hình camera nào.",
      "live.start": "Xem",
      "live.stop": "Dừng xem",
      "live.empty": "Chưa có hình từ camera này.",
      "live.alt": "Hình trực tiếp từ camera {camera}",
      "live.updated": "Cập nhật lúc {time}",
      "alarm.noSnapshotReason": "Không có ảnh: {problem}",
      "alarm.noClip": "Không có đoạn phim: {problem}",
      "alarm.downloadClip": "Tải đoạn phim ({format})",
      "keep.keep": "Giữ lại cho sự việc",
      "keep.release": "Bỏ giữ lại",
      "keep.note": "Lý do giữ lại",
      "keep.kept": "Đang giữ lại cho sự việc — {user}, {time}",
      "keep.badge": "Giữ lại",
      "devices.condition": "Tình trạng",
      "devices.problems": "Sự cố",
      "devices.state": "Trạng thái gửi lên",
      "devices.since": "từ {time}",
      "condition.ok": "Bình thường",
      "condition.warning": "Cảnh báo",
      "condition.fault": "Lỗi",
      "condition.offline": "Ngoại tuyến",
      "condition.unknown": "Chưa rõ",
      "kind.gate": "Cổng an ninh",
      "kind.reader": "Đầu đọc RFID",
      "kind.camera": "Camera",
      "kind.kiosk": "Máy tự mượn",
      "kind.backend": "Máy chủ",
      "kind.unknown": "Không rõ",
      "problem.beam_stuck": "Tia cảm biến bị chặn hoặc hỏng",
      "problem.io_link_down": "Mất kết nối mô-đun I/O của cổng",
      "problem.reader_link_down": "Mất kết nối đầu đọc",
      "problem.stream_stale": "Luồng hình camera bị treo",
      "problem.stream_connecting": "Camera đang kết nối",
      "problem.kiosk_offline": "Máy tự mượn mất kết nối máy chủ",
      "problem.out_of_paper": "Hết giấy in",
      "problem.queued_transactions": "Giao dịch đang chờ gửi",
      "problem.offline": "Ngoại tuyến",
      "problem.never_seen": "Chưa từng kết nối",
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
      "occupancy.heading": "People in the library",
      "occupancy.total": "Total",
      "occupancy.gate": "Gate {gate}",
      "occupancy.inOut": "In {entries} · Out {exits}",
      "occupancy.since": "Counted since {time}",
      "occupancy.drift": "More exits than entries were counted ({net}): the count has drifted; shown as 0.",
      "occupancy.beamFault": "Gate beam fault — counts may be wrong.",
      "live.heading": "Live view",
      "live.notice": "Every viewing is logged.",
      "live.none": "No cameras configured.",
      "live.start": "Watch",
      "live.stop": "Stop watching",
      "live.empty": "No picture from this camera yet.",
      "live.alt": "Live picture from camera {camera}",
      "live.updated": "Updated {time}",
      "alarm.noSnapshotReason": "No snapshot: {problem}",
      "alarm.noClip": "No clip: {problem}",
      "alarm.downloadClip": "Download the clip ({format})",
      "keep.keep": "Keep for an incident",
      "keep.release": "Release",
      "keep.note": "Why it is kept",
      "keep.kept": "Kept for an incident — {user}, {time}",
      "keep.badge": "Kept",
      "devices.condition": "Condition",
      "devices.problems": "Problems",
      "devices.state": "Reported state",
      "devices.since": "since {time}",
      "condition.ok": "OK",
      "condition.warning": "Warning",
      "condition.fault": "Fault",
      "condition.offline": "Offline",
      "condition.unknown": "Unknown",
      "kind.gate": "Security gate",
      "kind.reader": "RFID reader",
      "kind.camera": "Camera",
      "kind.kiosk": "Self-check kiosk",
      "kind.backend": "Server",
      "kind.unknown": "Unknown",
      "problem.beam_stuck": "Beam blocked or faulty",
      "problem.io_link_down": "Gate I/O module link down",
      "problem.reader_link_down": "Reader link down",
      "problem.stream_stale": "Camera stream stale",
      "problem.stream_connecting": "Camera connecting",
      "problem.kiosk_offline": "Kiosk cannot reach the server",
      "problem.out_of_paper": "Out of paper",
      "problem.queued_transactions": "Transactions waiting to be sent",
      "problem.offline": "Offline",
      "problem.never_seen": "Never heard from",
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
