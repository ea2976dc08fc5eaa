"""The portal's two languages: Vietnamese (default) and English, one dict each.

``t(lang, key, **fields)`` looks a label up (falling back to English, then to the key);
indicator names and value units have Vietnamese names for today's indicator codes and fall
back to the library's English name for any other code. Numbers are written the way each
language reads them (``1.234,5`` / ``1,234.5``), never in scientific notation.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from schemas import codes
from sinks.reports.indicators import Indicator

__all__ = ["LANGS", "cadre_name", "indicator_name", "number", "t", "timestamp", "unit_label"]

LANGS = ("vi", "en")

_VI: dict[str, str] = {
    "app_title": "Cổng báo cáo y tế",
    "skip": "Bỏ qua, đến nội dung chính",
    "main_nav": "Điều hướng chính",
    "nav_dashboard": "Bảng tổng hợp",
    "nav_completeness": "Tính đầy đủ và kịp thời",
    "nav_approvals": "Phê duyệt",
    "nav_users": "Tài khoản",
    "nav_audit": "Nhật ký truy cập",
    "nav_public": "Trang công khai",
    "nav_patient": "Tóm tắt bệnh nhân",
    "language": "Ngôn ngữ",
    "other_language": "English",
    "login": "Đăng nhập",
    "logout": "Đăng xuất",
    "username": "Tên đăng nhập",
    "password": "Mật khẩu",
    "login_failed": "Tên đăng nhập hoặc mật khẩu không đúng.",
    "login_locked": "Đăng nhập sai quá nhiều lần: tạm khóa đến {until}.",
    "session_ended": "Phiên làm việc đã kết thúc. Vui lòng đăng nhập lại.",
    "signed_in_as": "Người dùng",
    "scope": "Phạm vi",
    "roles": "Vai trò",
    "role_analyst": "phân tích",
    "role_approver": "phê duyệt",
    "role_administrator": "quản trị",
    "role_clinician": "bác sĩ lâm sàng",
    "breadcrumb": "Vị trí",
    "period": "Kỳ báo cáo",
    "month": "Tháng",
    "quarter": "Quý",
    "half-year": "6 tháng",
    "nine-months": "9 tháng",
    "year": "Năm",
    "previous": "Kỳ trước",
    "next": "Kỳ sau",
    "hierarchy": "Cơ cấu đơn vị",
    "as-recorded": "Như khi ghi nhận",
    "current": "Quy đổi theo cơ cấu sau 01/7/2025",
    "view": "Số liệu",
    "latest": "Mới nhất",
    "as-submitted": "Như khi nộp",
    "apply": "Áp dụng",
    "kind_health": "Chỉ số sức khỏe",
    "kind_resources": "Nguồn lực",
    "kind_completeness": "Tính đầy đủ và kịp thời của báo cáo",
    "dashboard_of": "Bảng tổng hợp: {unit}",
    "latest_month_note": "Tháng {month}; xu hướng {n} tháng gần nhất.",
    "indicator": "Chỉ số",
    "value": "Giá trị",
    "value_unit": "Đơn vị tính",
    "numerator": "Tử số",
    "denominator": "Mẫu số",
    "source": "Nguồn dữ liệu",
    "definition": "Định nghĩa",
    "definition_lang_note": "Định nghĩa chi tiết (tiếng Anh):",
    "trend": "Xu hướng",
    "trend_table": "Số liệu của biểu đồ",
    "children": "Theo đơn vị trực thuộc",
    "unit": "Đơn vị",
    "code": "Mã",
    "open_indicator": "Xem chỉ số",
    "downloads": "Tải xuống",
    "download_csv": "Bảng (CSV)",
    "download_parquet": "Bảng (Parquet)",
    "download_fhir": "FHIR MeasureReport (JSON)",
    "download_indicator_fhir": "Chỉ số này, FHIR MeasureReport (JSON)",
    "no_data": "Chưa có số liệu.",
    "chart_trend": "Xu hướng của {name}",
    "chart_children": "{name} theo đơn vị trực thuộc",
    "error_refused": "Không được phép truy cập",
    "error_refused_text": (
        "Tài khoản của bạn chỉ được xem số liệu thuộc phạm vi {scope}. Yêu cầu này đã được "
        "ghi vào nhật ký truy cập."
    ),
    "error_bad": "Yêu cầu không hợp lệ",
    "error_not_found": "Không tìm thấy trang",
    "error_forbidden": "Không thực hiện được",
    "error_csrf": "Biểu mẫu đã hết hạn hoặc không hợp lệ. Vui lòng thử lại.",
    "back_home": "Về bảng tổng hợp",
    "approvals_title": "Báo cáo chờ phê duyệt",
    "approvals_none": "Không có báo cáo nào đang chờ bạn.",
    "approvals_recent": "Quyết định gần đây",
    "approvals_intro": (
        "Báo cáo tháng của các trạm y tế đã được trưởng trạm ký và nộp. Quyết định của bạn được "
        'ký số bằng khóa của tài khoản; số liệu "như đã nộp" của tháng được cố định khi phê '
        "duyệt."
    ),
    "station": "Trạm y tế",
    "on_time": "Đúng hạn",
    "yes": "có",
    "no": "không",
    "submitted_at": "Thời gian nộp",
    "status": "Trạng thái",
    "status_submitted": "Chờ phê duyệt",
    "status_approved": "Đã phê duyệt",
    "status_sent_back": "Đã trả lại",
    "approve": "Phê duyệt",
    "send_back": "Trả lại",
    "note": "Ghi chú (bắt buộc khi trả lại)",
    "decided_by": "Người quyết định",
    "see_report": "Xem báo cáo",
    "users_title": "Tài khoản",
    "add_user": "Thêm tài khoản",
    "facility": "Cơ sở (mã trạm, cho bác sĩ lâm sàng)",
    "scope_help": "national, province:MÃ, district:MÃ hoặc station:MÃ",
    "create": "Tạo",
    "disable": "Vô hiệu hóa",
    "enable": "Kích hoạt lại",
    "unlock": "Mở khóa đăng nhập",
    "state": "Tình trạng",
    "state_active": "Đang hoạt động",
    "state_disabled": "Đã vô hiệu hóa",
    "state_locked": "Tạm khóa đăng nhập",
    "actions": "Thao tác",
    "tokens": "Mã truy cập API",
    "token_name": "Tên mã",
    "new_token": "Tạo mã API",
    "token_shown_once": "Mã API chỉ hiển thị một lần, hãy lưu lại ngay:",
    "revoke": "Thu hồi",
    "revoked": "Đã thu hồi",
    "created": "Ngày tạo",
    "last_used": "Dùng lần cuối",
    "owner": "Tài khoản",
    "user_created": "Đã tạo tài khoản {name}. Mật khẩu ban đầu (chỉ hiển thị một lần):",
    "done": "Đã thực hiện.",
    "audit_title": "Nhật ký truy cập",
    "audit_ok": "Chuỗi băm nguyên vẹn: {n} mục, mục cuối {seq}.",
    "audit_bad": "Phát hiện nhật ký bị sửa đổi:",
    "time": "Thời gian",
    "principal": "Chủ thể",
    "action": "Hành động",
    "outcome": "Kết quả",
    "detail": "Chi tiết",
    "public_title": "Nguồn lực ngành y tế: số liệu công khai",
    "public_intro": (
        "Nhân lực, giường bệnh, trang thiết bị và tình trạng thuốc thiết yếu của các trạm y "
        "tế xã, theo tỉnh và xã, theo báo cáo gần nhất trong kỳ. Không có số liệu cá nhân."
    ),
    "suppressed_legend": (
        "Ô có dấu * bị ẩn: nhỏ hơn {t} hoặc có thể suy ra từ các tổng (bảo vệ số nhỏ)."
    ),
    "suppressed": "đã ẩn",
    "open_data": "Dữ liệu mở",
    "by_province": "Theo tỉnh",
    "by_commune": "Theo xã: {name}",
    "choose_province": "Xem theo xã của tỉnh",
    "show": "Xem",
    "measure_staff": "Nhân lực theo chức danh",
    "measure_beds": "Giường bệnh",
    "measure_equipment": "Trang thiết bị",
    "measure_stockouts": "Thuốc thiết yếu hết",
    "col_total": "Tổng",
    "col_beds": "Số giường",
    "col_working": "Hoạt động tốt",
    "col_not_working": "Không hoạt động",
    "col_quantity": "Tổng số",
    "col_medicines_out": "Số loại thuốc hết",
    "level_national": "Toàn quốc",
    "patient_title": "Tóm tắt hồ sơ bệnh nhân",
    "health_id": "Mã định danh y tế",
    "lookup": "Tra cứu",
    "patient_unavailable": "Không tra cứu được tóm tắt bệnh nhân lúc này; xin thử lại sau.",
    "patient_not_found": "Không có hồ sơ của người này trong tỉnh.",
    "patient_bad_request": "Mã định danh y tế gồm 10 chữ số; cần nêu mục đích tra cứu.",
    "patient_scope": "Hồ sơ từ mọi trạm trong tỉnh của cơ sở {facility}.",
    "patient_logged": "Mỗi lần tra cứu đều được ghi vào nhật ký truy cập, kèm mục đích.",
    "purpose": "Mục đích tra cứu",
    "completeness_of": "Tính đầy đủ và kịp thời: {unit}",
}

_EN: dict[str, str] = {
    "app_title": "Health report portal",
    "skip": "Skip to main content",
    "main_nav": "Main navigation",
    "nav_dashboard": "Dashboard",
    "nav_completeness": "Completeness and timeliness",
    "nav_approvals": "Approvals",
    "nav_users": "Accounts",
    "nav_audit": "Access log",
    "nav_public": "Public page",
    "nav_patient": "Patient summary",
    "language": "Language",
    "other_language": "Tiếng Việt",
    "login": "Log in",
    "logout": "Log out",
    "username": "User name",
    "password": "Password",
    "login_failed": "Wrong user name or password.",
    "login_locked": "Too many failed logins: locked until {until}.",
    "session_ended": "Your session has ended. Please log in again.",
    "signed_in_as": "Signed in as",
    "scope": "Scope",
    "roles": "Roles",
    "role_analyst": "analyst",
    "role_approver": "approver",
    "role_administrator": "administrator",
    "role_clinician": "clinician",
    "breadcrumb": "You are here",
    "period": "Period",
    "month": "Month",
    "quarter": "Quarter",
    "half-year": "Half year",
    "nine-months": "9 months",
    "year": "Year",
    "previous": "Previous period",
    "next": "Next period",
    "hierarchy": "Units",
    "as-recorded": "As recorded",
    "current": "Restated into the units after 1 July 2025",
    "view": "Figures",
    "latest": "Latest",
    "as-submitted": "As submitted",
    "apply": "Apply",
    "kind_health": "Health indicators",
    "kind_resources": "Resources",
    "kind_completeness": "Reporting completeness and timeliness",
    "dashboard_of": "Dashboard: {unit}",
    "latest_month_note": "Month {month}; trend over the last {n} months.",
    "indicator": "Indicator",
    "value": "Value",
    "value_unit": "Unit of measure",
    "numerator": "Numerator",
    "denominator": "Denominator",
    "source": "Data source",
    "definition": "Definition",
    "definition_lang_note": "Full definition:",
    "trend": "Trend",
    "trend_table": "The chart's figures",
    "children": "By unit below",
    "unit": "Unit",
    "code": "Code",
    "open_indicator": "Open indicator",
    "downloads": "Downloads",
    "download_csv": "Table (CSV)",
    "download_parquet": "Table (Parquet)",
    "download_fhir": "FHIR MeasureReport (JSON)",
    "download_indicator_fhir": "This indicator, FHIR MeasureReport (JSON)",
    "no_data": "No data yet.",
    "chart_trend": "Trend of {name}",
    "chart_children": "{name} by unit below",
    "error_refused": "Access refused",
    "error_refused_text": (
        "Your account may read only the figures of {scope}. This request has been written to "
        "the access log."
    ),
    "error_bad": "Bad request",
    "error_not_found": "Page not found",
    "error_forbidden": "Not allowed",
    "error_csrf": "The form has expired or is not valid. Please try again.",
    "back_home": "Back to the dashboard",
    "approvals_title": "Reports waiting for your approval",
    "approvals_none": "Nothing is waiting for you.",
    "approvals_recent": "Recent decisions",
    "approvals_intro": (
        "Stations' monthly reports, signed and submitted by the station head. Your decision is "
        "signed with your account's key; the month's figures \"as submitted\" are frozen when "
        "you approve."
    ),
    "station": "Station",
    "on_time": "On time",
    "yes": "yes",
    "no": "no",
    "submitted_at": "Submitted at",
    "status": "Status",
    "status_submitted": "Waiting",
    "status_approved": "Approved",
    "status_sent_back": "Sent back",
    "approve": "Approve",
    "send_back": "Send back",
    "note": "Note (required to send back)",
    "decided_by": "Decided by",
    "see_report": "See the report",
    "users_title": "Accounts",
    "add_user": "Add an account",
    "facility": "Facility (station code, for clinicians)",
    "scope_help": "national, province:CODE, district:CODE or station:CODE",
    "create": "Create",
    "disable": "Disable",
    "enable": "Enable",
    "unlock": "Unlock logins",
    "state": "State",
    "state_active": "Active",
    "state_disabled": "Disabled",
    "state_locked": "Logins locked",
    "actions": "Actions",
    "tokens": "API tokens",
    "token_name": "Token name",
    "new_token": "Create an API token",
    "token_shown_once": "The token is shown only once; store it now:",
    "revoke": "Revoke",
    "revoked": "Revoked",
    "created": "Created",
    "last_used": "Last used",
    "owner": "Account",
    "user_created": "Account {name} created. Initial password (shown only once):",
    "done": "Done.",
    "audit_title": "Access log",
    "audit_ok": "Hash chain intact: {n} entries, last entry {seq}.",
    "audit_bad": "The log has been tampered with:",
    "time": "Time",
    "principal": "Principal",
    "action": "Action",
    "outcome": "Outcome",
    "detail": "Detail",
    "public_title": "Health sector resources: open figures",
    "public_intro": (
        "Staff, beds, equipment and essential-medicine stock of the commune health stations, "
        "by province and commune, from each station's latest report in the period. No "
        "personal data."
    ),
    "suppressed_legend": (
        "Cells marked * are hidden: below {t}, or recoverable from the totals (small-cell "
        "protection)."
    ),
    "suppressed": "hidden",
    "open_data": "Open data",
    "by_province": "By province",
    "by_commune": "By commune: {name}",
    "choose_province": "Show the communes of",
    "show": "Show",
    "measure_staff": "Staff by cadre",
    "measure_beds": "Beds",
    "measure_equipment": "Equipment",
    "measure_stockouts": "Essential medicines out of stock",
    "col_total": "Total",
    "col_beds": "Beds",
    "col_working": "In working order",
    "col_not_working": "Not working",
    "col_quantity": "Total",
    "col_medicines_out": "Medicines out of stock",
    "level_national": "Viet Nam",
    "patient_title": "Patient summary",
    "health_id": "Health id",
    "lookup": "Look up",
    "patient_unavailable": "The patient summary cannot be looked up now; try again later.",
    "patient_not_found": "No record of this person in the province.",
    "patient_bad_request": "A health id is 10 digits; state the purpose of the look-up.",
    "patient_scope": "Records from every station of the province of facility {facility}.",
    "patient_logged": "Every look-up is written to the access log, with its purpose.",
    "purpose": "Purpose",
    "completeness_of": "Completeness and timeliness: {unit}",
}

_CATALOG = {"vi": _VI, "en": _EN}

_INDICATORS_VI = {
    "health_record_coverage": "Tỷ lệ dân số có hồ sơ sức khỏe điện tử",
    "outpatient_visits_per_capita": "Số lượt khám ngoại trú bình quân đầu người",
    "fully_immunised_under_1": "Tỷ lệ trẻ dưới 1 tuổi được tiêm chủng đầy đủ",
    "measles_coverage": "Tỷ lệ trẻ dưới 1 tuổi được tiêm vắc xin sởi mũi 1",
    "hypertension_registered": "Số người bệnh tăng huyết áp trong sổ quản lý",
    "hypertension_new_registrations": "Số người bệnh tăng huyết áp mới đăng ký quản lý",
    "hypertension_on_treatment": "Tỷ lệ người bệnh tăng huyết áp được điều trị",
    "hypertension_followed_up": "Tỷ lệ người bệnh tăng huyết áp được khám trong 3 tháng qua",
    "hypertension_controlled": "Tỷ lệ người bệnh tăng huyết áp được kiểm soát",
    "hypertension_lost_to_follow_up": "Tỷ lệ người bệnh tăng huyết áp bỏ theo dõi (12 tháng)",
    "diabetes_registered": "Số người bệnh đái tháo đường trong sổ quản lý",
    "diabetes_new_registrations": "Số người bệnh đái tháo đường mới đăng ký quản lý",
    "diabetes_on_treatment": "Tỷ lệ người bệnh đái tháo đường được điều trị",
    "diabetes_followed_up": "Tỷ lệ người bệnh đái tháo đường được khám trong 3 tháng qua",
    "diabetes_controlled": "Tỷ lệ người bệnh đái tháo đường được kiểm soát",
    "diabetes_lost_to_follow_up": "Tỷ lệ người bệnh đái tháo đường bỏ theo dõi (12 tháng)",
    "anc4": "Tỷ lệ phụ nữ đẻ được khám thai từ 4 lần trở lên",
    "facility_deliveries": "Tỷ lệ đẻ tại cơ sở y tế",
    "skilled_birth_attendance": "Tỷ lệ đẻ có cán bộ y tế qua đào tạo đỡ",
    "low_birth_weight": "Tỷ lệ trẻ đẻ sống có cân nặng dưới 2.500 gam",
    "infant_mortality": "Tỷ suất tử vong trẻ dưới 1 tuổi",
    "incidence_all": "Tỷ lệ mắc bệnh truyền nhiễm phải báo cáo",
    "station_doctors_per_10000": "Số bác sĩ trạm y tế xã trên 10.000 dân",
    "stations_with_doctor": "Tỷ lệ trạm y tế xã có bác sĩ",
    "stations_with_midwife": "Tỷ lệ trạm y tế xã có hộ sinh hoặc y sĩ sản nhi",
    "station_beds_per_10000": "Số giường bệnh trạm y tế xã trên 10.000 dân",
    "equipment_working": "Tỷ lệ trang thiết bị hoạt động tốt",
    "stations_with_stockout": "Tỷ lệ trạm y tế xã hết thuốc thiết yếu",
    "reporting_completeness": "Tỷ lệ báo cáo đầy đủ của trạm y tế",
    "ontime_station": "Tỷ lệ báo cáo đúng hạn, trạm y tế (5 ngày làm việc)",
    "reports_approved": "Tỷ lệ báo cáo của trạm y tế được đơn vị cấp trên phê duyệt",
    "ontime_district": "Tỷ lệ báo cáo đúng hạn, huyện/khu vực (15 ngày làm việc)",
    "ontime_province": "Tỷ lệ báo cáo đúng hạn, tỉnh (25 ngày làm việc)",
}
_DISEASES_VI = {
    "DENGUE": "sốt xuất huyết Dengue",
    "MEASLES": "sởi",
    "RUBELLA": "rubella",
    "HFMD": "tay chân miệng",
    "COVID19": "COVID-19",
    "INFLUENZA_A_H5N1": "cúm A(H5N1)",
    "DIPHTHERIA": "bạch hầu",
    "PERTUSSIS": "ho gà",
    "NEONATAL_TETANUS": "uốn ván sơ sinh",
    "POLIO_AFP": "liệt mềm cấp/bại liệt",
    "CHOLERA": "tả",
    "TYPHOID": "thương hàn",
    "SHIGELLOSIS": "lỵ trực trùng",
    "RABIES": "dại",
    "MALARIA": "sốt rét",
    "MENINGOCOCCAL": "não mô cầu",
    "JAPANESE_ENCEPHALITIS": "viêm não Nhật Bản",
    "HEPATITIS_VIRAL": "viêm gan vi rút cấp",
    "MUMPS": "quai bị",
    "VARICELLA": "thủy đậu",
    "ANTHRAX": "bệnh than",
    "PLAGUE": "dịch hạch",
}
_UNITS_VI = {
    "%": "%",
    "visits per person": "lượt/người",
    "patients": "người bệnh",
    "per 1,000 live births": "‰ trẻ đẻ sống",
    "per 100,000": "trên 100.000 dân",
    "per 10,000": "trên 10.000 dân",
}


def t(lang: str, key: str, **fields: object) -> str:
    text = _CATALOG.get(lang, _VI).get(key) or _EN.get(key) or key
    return text.format(**fields) if fields else text


def indicator_name(lang: str, ind: Indicator) -> str:
    if lang == "vi":
        if ind.code in _INDICATORS_VI:
            return _INDICATORS_VI[ind.code]
        if ind.code.startswith("incidence_"):
            disease = ind.code.removeprefix("incidence_").upper()
            return f"Tỷ lệ mắc {_DISEASES_VI.get(disease, disease)}"
    return ind.name


def unit_label(lang: str, unit: str) -> str:
    return _UNITS_VI.get(unit, unit) if lang == "vi" else unit


def cadre_name(lang: str, cadre: str) -> str:
    """``codes.CADRES`` holds "Vietnamese (English)"."""
    text = codes.CADRES.get(cadre, cadre)
    vi, _, en = text.partition(" (")
    return vi if lang == "vi" else (en.rstrip(")") or vi)


def number(value: float | int | None, lang: str, digits: int | None = None) -> str:
    """A number as people read it: thousands grouped, a few decimals, no exponent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if digits is None:
        if isinstance(value, int) or float(value).is_integer():
            digits = 0
        elif abs(value) >= 100:
            digits = 1
        elif abs(value) >= 1:
            digits = 2
        else:
            digits = max(2, 1 - math.floor(math.log10(abs(value))) + 1)
    text = f"{value:,.{min(digits, 8)}f}"
    if lang == "vi":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def timestamp(when: float | datetime | None, lang: str) -> str:
    """An epoch time or an aware datetime, in the server's local time."""
    if when is None:
        return "–"
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when, UTC)
    when = when.astimezone()
    return when.strftime("%d/%m/%Y %H:%M" if lang == "vi" else "%Y-%m-%d %H:%M")
