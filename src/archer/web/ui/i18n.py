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
    # campaign results
    "Results": "效果",
    "No results": "无结果",
    "Reached": "已触达",
    "Registered": "已注册",
    "Buyers": "购买人数",
    "Conversion": "转化率",
    "Refund users": "退款人数",
    "Orders": "订单数",
    "Units": "件数",
    "Sales (net of refunds)": "销售额（扣除退款）",
    "Gross profit": "毛利",
    "Gross margin": "毛利率",
    "Coupons redeemed": "已核销优惠券",
    "Points spent": "已使用积分",
    "Message cost": "消息成本",
    "Sales per run": "每次运行销售额",
    "Gross profit per run": "每次运行毛利",
    "Promotion cost per run": "每次运行促销成本",
    "pts": "个百分点",
    "95% interval": "95% 区间",
    "to": "至",
    "not enough data": "数据不足",
    "higher": "更高",
    "lower": "更低",
    "not distinguishable from zero": "与零无法区分",
    "No holdout: nothing to compare with, so no uplift can be told.":
        "没有对照组：无从比较，无法得出增量。",
    "The campaign raised conversion beyond chance and the smallest effect it could see.":
        "活动提升了转化率，超出偶然波动且不小于最小可检测效应。",
    "The campaign lowered conversion beyond chance.": "活动降低了转化率，超出偶然波动。",
    "Not enough data to tell.": "数据不足，无法判断。",
    "The difference in conversion is not distinguishable from zero at this size.":
        "在此样本量下，转化率差异与零无法区分。",
    "Gross profit per run is higher than the holdout's.": "每次运行毛利高于对照组。",
    "Gross profit per run is lower than the holdout's.": "每次运行毛利低于对照组。",
    "Conversion difference per step": "各步骤转化率差异",
    "Conversion against the first variant": "相对第一个版本的转化率",
    "Each run counted from its entry over": "每次运行自进入起统计",
    "as asked": "按请求",
    "the campaign's goal_within": "活动的 goal_within",
    "the default window": "默认窗口",
    "as of": "截至",
    "intention-to-treat: every enrolled run counts in its arm, reached or not":
        "意向性分析：每个进入的运行都计入其分组，无论是否触达",
    "Back to the campaign": "返回活动",
    "Verdict": "结论",
    "Incremental gross profit": "增量毛利",
    "ROI": "投资回报率",
    "Conversion difference": "转化率差异",
    "The arms side by side": "分组对比",
    "Per run, each arm": "各分组每次运行",
    "Sales, gross profit and promotion cost per enrolled run.":
        "每个进入运行的销售额、毛利和促销成本。",
    "Treated − holdout, per run, with 95% intervals": "实验组 − 对照组（每次运行），含 95% 区间",
    "The bar is the 95% interval, the dot the difference, the dashed mark the minimum detectable effect. An interval across 0 means the test cannot tell.":  # noqa: E501
        "横条为 95% 区间，圆点为差异，虚线为最小可检测效应。区间跨过 0 表示无法判断。",
    "Difference": "差异",
    "MDE": "最小可检测效应",
    "Attributed by window (not caused)": "按窗口归因（非因果）",
    "Orders in the window after a message: attributed, not caused. They include what would have been bought anyway; the uplift above is what the campaign caused.":  # noqa: E501
        "消息之后窗口内的订单：是归因，不是因果，其中包括本来就会发生的购买；上方的增量才是活动带来的。",
    "Sales": "销售额",
    "Per step": "按步骤",
    "Per channel": "按渠道",
    "Channel": "渠道",
    "The runs each message step reached (the holdout's: would have reached), and the conversion difference among them.":  # noqa: E501
        "每个消息步骤触达的运行（对照组为本应触达的），以及其中的转化率差异。",
    "Per variant": "按版本",
    "Variant": "版本",
    "Comparing variants": "版本比较",
    "A fixed-horizon test: no winner is named before every variant has the runs needed to see the rise it was sized for. Checking daily and stopping on a good day overstates the result.":  # noqa: E501
        "固定样本量检验：每个版本都达到检测预设提升所需的运行数之前，不宣布胜者。每天查看并在结果好的那天停止会夸大结果。",
    "no winner yet: needs {needed} per variant, has {has}":
        "尚无胜者：每个版本需要 {needed} 次运行，目前有 {has} 次",
    "{winner} wins: its conversion is the highest, beyond chance and the MDE":
        "{winner} 胜出：转化率最高，超出偶然波动且不小于最小可检测效应",
    "no winner: the variants are not distinguishable at the size the test needed":
        "没有胜者：在检验所需的样本量下，各版本无法区分",
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
