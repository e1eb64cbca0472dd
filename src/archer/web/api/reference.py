"""``GET /docs``: the API's reference as one self-contained HTML page, drawn from the OpenAPI
document (``GET /openapi.json``). FastAPI's own Swagger UI loads its scripts from a CDN, which a
shop's server without internet cannot reach, so it is replaced by this page. Both need
credentials, like everything but the sign-in.
"""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
METHODS = ("get", "post", "put", "patch", "delete")
STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
line-height:1.45}code,pre{font-family:ui-monospace,monospace;font-size:.9em}
h2{border-bottom:1px solid #ddd;margin-top:2.5rem}.op{margin:1.2rem 0;padding:.6rem .9rem;
border-left:4px solid #4a7}.m{font-weight:bold;text-transform:uppercase;margin-right:.5rem}
table{border-collapse:collapse}td,th{padding:.15rem .6rem;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}pre{background:#f6f6f6;padding:.5rem;overflow:auto}"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    return str(schema.get("type", "any"))


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    e = html.escape
    parts = [f'<div class="op"><span class="m">{e(method)}</span><code>{e(path)}</code>']
    if op.get("summary"):
        parts.append(f"<p><b>{e(op['summary'])}</b></p>")
    if op.get("description"):
        parts.append(f"<p>{e(op['description'])}</p>")
    params = op.get("parameters", [])
    if params:
        rows = "".join(
            f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
            f"<td>{e(_type(p.get('schema', {})))}</td><td>{'yes' if p.get('required') else ''}"
            f"</td><td>{e(p.get('description', '') or p.get('schema', {}).get('description', ''))}"
            "</td></tr>"
            for p in params
        )
        parts.append(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th>"
            f"<th></th></tr>{rows}</table>"
        )
    body = op.get("requestBody", {}).get("content", {})
    for media, spec in body.items():
        parts.append(f"<p>Body ({e(media)}): <code>{e(_type(spec.get('schema', {})))}</code></p>")
    codes = ", ".join(e(c) for c in op.get("responses", {}))
    parts.append(f"<p>Answers: {codes}</p></div>")
    return "".join(parts)


def page(doc: dict[str, Any]) -> str:
    e = html.escape
    by_tag: dict[str, list[str]] = {}
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op:
                tag = (op.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append(_operation(method, path, op))
    sections = "".join(f"<h2>{e(tag)}</h2>{''.join(ops)}" for tag, ops in by_tag.items())
    schemas = doc.get("components", {}).get("schemas", {})
    models = "".join(
        f"<h3 id='{e(name)}'>{e(name)}</h3><pre>{e(json.dumps(s, indent=1))}</pre>"
        for name, s in schemas.items()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(doc['info']['title'])} API</title><style>{STYLE}</style></head><body>"
        f"<h1>{e(doc['info']['title'])} API</h1><p>Send an API key as "
        "<code>Authorization: Bearer &lt;key&gt;</code> (<code>archer apikey create NAME</code>)"
        ", or use the signed-in session with the header <code>X-CSRF-Token</code> on unsafe "
        'methods. Errors are RFC 9457 problem details. The machine-readable document: <a href="'
        f'/openapi.json">/openapi.json</a>.</p>{sections}<h2>Models</h2>{models}</body></html>'
    )


@router.get("/docs")
async def reference(request: Request) -> HTMLResponse:
    return HTMLResponse(page(request.app.openapi()))


def install(app: FastAPI) -> None:
    """Put this page in place of FastAPI's CDN-based /docs and /redoc."""
    dropped = {"/docs", "/docs/oauth2-redirect", "/redoc"}
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", "") not in dropped]
    app.include_router(router)
