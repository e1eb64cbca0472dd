"""The pages' words in Chinese (the default) or English: templates write the English text and
call ``t("…")``; :data:`ZH` gives its Chinese. ``?lang=en`` (or ``?lang=zh``) switches and is
remembered in the ``archer_lang`` cookie; a text with no translation shows as written."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from starlette.responses import Response

LANGS = ("zh", "en")
DEFAULT = "zh"
COOKIE = "archer_lang"

# fmt: off
ZH: dict[str, str] = {
    "Campaigns": "营销活动",
    "Triggered flows and broadcasts: who enters, what they get, and what was held back.":
        "触发式流程与群发：谁进入、收到了什么、哪些被拦下。",
    "Name": "名称",
    "Kind": "类型",
    "Status": "状态",
    "Version": "版本",
    "Enrolled": "已进入",
    "Holdout": "对照组",
    "Sent": "已发送",
    "Held back": "对照未发",
    "Skipped": "已跳过",
    "Failed": "失败",
    "Waiting": "待发送",
    "None yet.": "暂无。",
    "flow": "流程",
    "broadcast": "群发",
    "draft": "草稿",
    "active": "进行中",
    "paused": "已暂停",
    "ended": "已结束",
    "New campaign from a template": "从模板新建",
    "Template": "模板",
    "Holdout share": "对照组比例",
    "Overrides": "覆盖设置",
    "one KEY=VALUE a line, e.g. steps.remind-1d.channel=inbox":
        "每行一个 KEY=VALUE，例如 steps.remind-1d.channel=inbox",
    "optional": "可选",
    "Create": "创建",
    "Create and start": "创建并启动",
    "New campaign from a definition": "从定义新建",
    "Definition": "定义",
    "TOML or JSON, as in docs/campaigns.md": "TOML 或 JSON，见 docs/campaigns.md",
    "The campaign was not saved": "活动未保存",
    "Start": "启动",
    "Pause": "暂停",
    "Resume": "恢复",
    "End": "结束",
    "End this campaign for good? Its ledger is kept.": "确定永久结束此活动？台账会保留。",
    "Counts per arm and step": "按分组和步骤统计",
    "Arm": "分组",
    "Step": "步骤",
    "treatment": "实验组",
    "holdout": "对照组",
    "Skipped, by reason": "跳过原因",
    "Runs": "运行",
    "Ledger": "台账",
    "Customer": "客户",
    "Key": "触发键",
    "Entered": "进入时间",
    "State": "状态",
    "Messages": "消息",
    "Nobody has entered yet.": "尚无人进入。",
    "Preview": "预览",
    "Customer id": "客户编号",
    "Message step": "消息步骤",
    "Show": "显示",
    "To": "收件人",
    "Subject": "主题",
    "Text": "正文",
    "New version": "新版本",
    "Save as a new version": "保存为新版本",
    "Runs already enrolled finish on the version they entered.":
        "已进入的运行按其进入时的版本继续。",
    "Created by": "创建者",
    "Started": "启动于",
    "Versions": "版本",
    "← Previous": "← 上一页",
    "Next →": "下一页 →",
    "Page": "第",
    "of": "页，共",
    "completed": "已完成",
    "exited": "已退出",
    "converted": "已转化",
    "planned": "已计划",
    "claimed": "发送中",
    "sent": "已发送",
    "skipped": "已跳过",
    "failed": "失败",
    "Not found": "未找到",
    "Not changed": "未更改",
    "Back": "返回",
    "Notes": "说明",
    "Language": "语言",
    "no_consent": "未获同意",
    "suppressed": "地址已屏蔽",
    "frequency_cap": "频率上限",
    "expired": "已过期",
    "outside_window": "不在发送时段",
    "no_address": "无地址",
    "bad_address": "地址无效",
    # offers: coupons and points
    "Coupons and points": "优惠券与积分",
    "Coupon templates, what they gave and cost; points balances and what expires soon.":
        "优惠券模板的发放、核销与成本；积分余额与即将过期的积分。",
    "Saved the coupon template": "已保存优惠券模板",
    "Coupon templates": "优惠券模板",
    "Coupon": "优惠券",
    "Valid": "有效期",
    "Issued": "已发放",
    "Redeemed": "已核销",
    "Expired": "已过期",
    "Unused": "未使用",
    "In pool": "券池待发",
    "Promotion cost": "促销成本",
    "Budget": "预算",
    "imported codes": "导入券码",
    "days from issue": "天（自发放起）",
    "until": "至",
    "New coupon template": "新建优惠券模板",
    "The coupon template was not saved": "优惠券模板未保存",
    "threshold": "满减",
    "rate": "折扣",
    "cash": "无门槛",
    "spend X, save Y": "满X减Y",
    "pay a share of the price": "按比例打折",
    "off any order, no threshold": "无门槛立减",
    "Spend at least": "满（门槛金额）",
    "Save": "减（优惠金额）",
    "Share paid": "折扣率",
    "0.9 = pay 90%": "0.9 = 9折",
    "Saves at most": "最多优惠",
    "Valid days from issue": "发放后有效天数",
    "Or valid until": "或有效至",
    "a day": "日期",
    "Per customer": "每人限领",
    "In total": "总量上限",
    "empty: no limit": "留空：不限",
    "the most all its coupons may save": "所有券合计最多优惠",
    "Hand out imported codes": "发放导入的券码",
    "Highest points balances": "积分余额最高",
    "points buy one coupon of": "积分可兑换一张",
    "Balance": "余额",
    "Expiring in 30 days": "30天内过期",
    "Points expiring within 30 days": "30天内过期的积分",
    "points of": "积分，涉及",
    "customers": "位客户",
    "Points": "积分",
    "First expiry": "最早过期日",
    "Points balance": "积分余额",
    "Code": "券码",
    "Expires": "到期",
    "Order": "订单",
    "No coupons yet.": "暂无优惠券。",
    "issued": "未使用",
    "redeemed": "已核销",
    "void": "已作废",
    "pool": "待发放",
    "Customer coupons, newest first": "该客户的优惠券（最新在前）",
}
# fmt: on


def lang_of(request: Request) -> str:
    """The page's language: ``?lang=``, else the remembered one, else Chinese."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(COOKIE)
    return kept if kept in LANGS else DEFAULT


def translator(lang: str) -> Callable[[str], str]:
    if lang == "zh":
        return lambda text: ZH.get(text, text)
    return lambda text: text


def remember(request: Request, response: Response) -> Response:
    """Keep a language asked for with ``?lang=`` for the next pages."""
    asked = request.query_params.get("lang")
    if asked in LANGS and request.cookies.get(COOKIE) != asked:
        secure = request.url.scheme == "https"
        response.set_cookie(
            COOKIE, asked, max_age=365 * 24 * 3600, httponly=True, samesite="lax", secure=secure
        )
    return response
