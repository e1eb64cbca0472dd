"""SMS: what the providers share — the template a step names, its parameters, the number.

Chinese SMS providers send only templates they approved, with the shop's approved signature:
a message step names the provider's template code (``template``) and fills its parameters
(``params``, each a Jinja expression). ``[sms] templates`` lists the approved codes with their
parameters; a step is checked against it when the campaign is saved (:func:`problems`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from archer.errors import suggest
from archer.messaging.channels import Outgoing, Permanent

if TYPE_CHECKING:
    from archer.config import SmsSettings
    from archer.messaging.channels import Channel
    from archer.workspace import Workspace

MAX_PARAM = 200  # characters of one rendered parameter (providers allow far fewer)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def open_sms(ws: Workspace) -> Channel:
    if ws.settings.sms.provider == "tencent":
        from archer.messaging.channels.sms_tencent import TencentSms

        return TencentSms(ws)
    from archer.messaging.channels.sms_aliyun import AliyunSms

    return AliyunSms(ws)


def national(address: str | None) -> str:
    """A number as Aliyun takes it: a mainland mobile as its 11 digits (``13800138000``),
    another with its country code (``85291234567``)."""
    digits = re.sub(r"\D", "", address or "")
    if (address or "").strip().startswith("+") or digits.startswith("00"):
        digits = digits.removeprefix("00")
    if digits.startswith("86") and _MOBILE.match(digits[2:]):
        return digits[2:]
    return digits


def e164(address: str | None) -> str:
    """A number in E.164 (``+8613800138000``), as Tencent takes it."""
    n = national(address)
    return "+86" + n if _MOBILE.match(n) else "+" + n


def checked(msg: Outgoing, settings: SmsSettings) -> tuple[str, str, list[tuple[str, str]]]:
    """The number, the template code and its parameters in the template's order; a message
    that cannot go as an SMS is :class:`Permanent`."""
    number = national(msg.address)
    if not (8 <= len(number) <= 20):
        raise Permanent(f"{msg.address!r} is not a phone number", suppress="bounce")
    if not msg.template:
        raise Permanent(
            f"an SMS through {settings.provider} needs an approved template: the step names "
            "none (`template` and `params`)"
        )
    declared = settings.templates.get(msg.template)
    if settings.templates and declared is None:
        raise Permanent(f"template {msg.template!r} is not one of [sms] templates")
    if declared is not None and set(declared) != set(msg.params):
        raise Permanent(
            f"template {msg.template!r} takes {', '.join(declared) or 'no parameters'}; the "
            f"message gives {', '.join(msg.params) or 'none'}"
        )
    for k, v in msg.params.items():
        if len(v) > MAX_PARAM:
            raise Permanent(f"parameter {k!r} is {len(v)} characters (at most {MAX_PARAM})")
    order = declared if declared is not None else _order(list(msg.params))
    return number, msg.template, [(k, msg.params[k]) for k in order]


def _order(names: list[str]) -> list[str]:
    """Parameters named 1, 2, 3 (Tencent's placeholders) in their numeric order."""
    if names and all(n.isdigit() for n in names):
        return sorted(names, key=int)
    return names


def problems(settings: SmsSettings, definition: Any) -> list[dict[str, Any]]:
    """What is wrong with the SMS steps of a campaign for this shop's provider: a step with
    no template, a code not in ``[sms] templates``, parameters missing or unknown."""
    out: list[dict[str, Any]] = []
    for i, s in enumerate(definition.steps):
        if getattr(s, "type", None) != "message" or s.channel != "sms":
            continue
        at = f'steps[{i}] "{s.id}"'
        for name, c in {"": s, **s.variants}.items():
            where = f"{at}.variants.{name}" if name else at
            code = c.template or s.template
            params = c.params if c.params is not None else s.params
            if code is None:
                if settings.configured:
                    msg = "the SMS provider sends approved templates only: name one with "
                    out.append({"at": where, "message": msg + "`template` and `params`"})
                continue
            declared = settings.templates.get(code)
            if declared is None:
                if settings.templates:
                    hint = suggest(code, settings.templates)
                    msg = f"template {code!r} is not one of [sms] templates"
                    if hint:
                        msg += f" — did you mean {hint[0]!r}?"
                    out.append({"at": f"{where}.template", "message": msg})
                continue
            given = list(params or {})
            missing = [p for p in declared if p not in given]
            extra = [p for p in given if p not in declared]
            if missing:
                out.append({"at": f"{where}.params", "message": f"template {code!r} needs "
                            + ", ".join(f"`{p}`" for p in missing)})  # fmt: skip
            for p in extra:
                takes = ", ".join(declared) or "none"
                msg = f"template {code!r} has no parameter {p!r} (it takes {takes})"
                out.append({"at": f"{where}.params.{p}", "message": msg})
    return out
