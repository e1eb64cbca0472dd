"""``/o2o``: offline group-buy events — the list, and for the chosen one (the latest by
default) the funnel per channel: sign-ups → check-ins → buyers → orders → sales, customer unit
price and cost per sign-up, attendee and order, with a chart. Chinese by default; this page's
words are in :data:`ZH` and the shared ones in :mod:`.i18n`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from archer.measurement import o2o
from archer.web.auth import CurrentUser
from archer.web.ui import i18n
from archer.web.ui.render import page

router = APIRouter(include_in_schema=False)
STEPS = ("signups", "checkins", "buyers", "orders")

# fmt: off
ZH: dict[str, str] = {
    "Group-buy events": "团购活动",
    "Offline events: who signed up through which channel, who came, what they bought.":
        "线下活动：各渠道报名、到场签到与成交。",
    "Events": "活动",
    "Event": "活动",
    "Starts": "开始",
    "Ends": "结束",
    "Coupon": "活动券码",
    "Sign-ups": "报名",
    "Scans": "扫码次数",
    "Funnel per channel": "各渠道漏斗",
    "Channel": "渠道",
    "Check-ins": "签到",
    "Buyers": "成交客户",
    "Orders": "订单",
    "Sales": "销售额",
    "Unit price": "客单价",
    "Cost": "渠道成本",
    "Per sign-up": "单个报名成本",
    "Per attendee": "单个到场成本",
    "Per order": "单笔订单成本",
    "Total": "合计",
    "As of": "截至",
    "Orders from the start until": "计入订单：自开始至",
    "money received by then, net of refunds; a deposit counts when paid.":
        "按届时已收款计、扣除退款；定金在支付时计入。",
    "Walk-ins checked in without signing up; the coupon row holds orders with the event's "
    "coupon whose buyer is no attendee.":
        "现场客为未报名直接签到者；券码行为使用活动券码但未匹配到到场客户的订单。",
    "No events yet: create one with archer o2o event create or POST /api/o2o/events.":
        "暂无活动：用 archer o2o event create 或 POST /api/o2o/events 创建。",
    "forum": "论坛",
    "qq": "QQ群",
    "wechat": "微信",
    "sem": "搜索推广",
    "site": "官网",
    "walk-in": "现场客",
    "coupon": "活动券码",
    "total": "合计",
}
# fmt: on


def translator(lang: str):
    shared = i18n.translator(lang)
    if lang != "zh":
        return shared
    return lambda text: ZH.get(text) or shared(text)


def chart(doc: dict[str, Any], t) -> dict[str, Any]:
    """Grouped bars per channel: sign-ups, check-ins, buyers, orders."""
    rows = doc["channels"]
    names = {"signups": "Sign-ups", "checkins": "Check-ins", "buyers": "Buyers", "orders": "Orders"}
    return {
        "kind": "bars",
        "categories": [t(r["channel"]) for r in rows],
        "series": [{"name": t(names[k]), "data": [r[k] for r in rows]} for k in STEPS],
    }


@router.get("/o2o", response_class=HTMLResponse)
def o2o_page(
    request: Request,
    user: CurrentUser,
    event: Annotated[str | None, Query(max_length=100)] = None,
):
    """The events, and the funnel of one of them."""
    ws = request.app.state.ws
    lang = i18n.lang_of(request)
    t = translator(lang)
    events = o2o.list_events(ws)
    chosen = event or (events[0]["name"] if events else None)
    doc = o2o.report(ws, chosen) if chosen else None  # an unknown one: the not-found page
    r = page(
        request,
        "o2o.html",
        user,
        section="o2o",
        lang=lang,
        t=t,
        events=events,
        doc=doc,
        spec=chart(doc, t) if doc else None,
    )
    return i18n.remember(request, r)
