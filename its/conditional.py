"""HTTP conditional requests (RFC 9110 section 13): validators and the 304/412 decision.

Pure functions first: :func:`entity_tag` makes a strong validator from bytes, :func:`http_date`
and :func:`parse_http_date` convert between epoch seconds and the IMF-fixdate form,
:func:`evaluate` applies the preconditions in the order of RFC 9110 section 13.2.2:

1. ``If-Match`` (strong comparison), else ``If-Unmodified-Since``: 412 when false;
2. ``If-None-Match`` (weak comparison; ``*`` matches any current representation): 304 for
   GET/HEAD, 412 otherwise; when it is present, ``If-Modified-Since`` is ignored;
3. ``If-Modified-Since`` (GET/HEAD only, ignored when not a valid HTTP-date): 304 when the
   resource has not changed since that second.

:func:`conditional_response` is the one response helper routes use: the representation
with ``ETag``, ``Last-Modified`` and ``Cache-Control``, or the 304/412 the request asked for,
carrying the same validators.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from its.errors import envelope, error_responses

__all__ = [
    "VALIDATOR_HEADERS",
    "conditional_response",
    "conditional_responses",
    "entity_tag",
    "evaluate",
    "http_date",
    "parse_http_date",
    "parse_tags",
    "weak",
]


def entity_tag(data: bytes | str, suffix: str = "") -> str:
    """A strong entity tag for ``data``: ``"<32 hex digits of BLAKE2b>"`` (``suffix`` inside the
    quotes tells representations of the same content apart, e.g. ``.json``)."""
    raw = data.encode() if isinstance(data, str) else data
    return f'"{hashlib.blake2b(raw, digest_size=16).hexdigest()}{suffix}"'


def weak(tag: str) -> str:
    """``tag`` as a weak validator (``W/"..."``)."""
    return tag if tag.startswith("W/") else "W/" + tag


def http_date(epoch_s: float) -> str:
    """``epoch_s`` (s) as an HTTP-date (IMF-fixdate, whole seconds, GMT)."""
    return format_datetime(datetime.fromtimestamp(math.floor(epoch_s), UTC), usegmt=True)


def parse_http_date(value: str) -> float | None:
    """Epoch seconds of an HTTP-date (any of the three RFC 9110 forms), or None when invalid."""
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_tags(header: str) -> list[str]:
    """The entity tags of an ``If-Match``/``If-None-Match`` value (``["*"]`` for ``*``).

    Tags are kept as sent (``W/`` prefix included); a malformed member is skipped.
    """
    value = header.strip()
    if value == "*":
        return ["*"]
    tags: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        if i >= n:
            break
        start = i
        if value.startswith("W/", i):
            i += 2
        if i < n and value[i] == '"':
            end = value.find('"', i + 1)
            if end < 0:
                break
            tags.append(value[start:end + 1])
            i = end + 1
        else:  # not an entity-tag: skip to the next comma
            comma = value.find(",", i)
            i = n if comma < 0 else comma + 1
    return tags


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def _weak_match(tags: list[str], etag: str) -> bool:
    return "*" in tags or _opaque(etag) in {_opaque(t) for t in tags}


def _strong_match(tags: list[str], etag: str) -> bool:
    if "*" in tags:
        return True
    return not etag.startswith("W/") and any(t == etag for t in tags if not t.startswith("W/"))


def evaluate(method: str, headers: Mapping[str, str], etag: str | None,
             last_modified_s: float | None) -> int | None:
    """The status the preconditions of a request on an existing resource call for.

    Parameters
    ----------
    method : str
        Request method.
    headers : mapping
        Request headers, lower-case names (a Starlette ``Headers`` is fine).
    etag : str or None
        Current entity tag of the selected representation (quoted, ``W/`` when weak).
    last_modified_s : float or None
        When the representation last changed, epoch s.

    Returns
    -------
    int or None
        304 (not modified), 412 (precondition failed) or None: answer normally.
    """
    safe = method.upper() in ("GET", "HEAD")
    lm = None if last_modified_s is None else math.floor(last_modified_s)
    if_match = headers.get("if-match")
    if if_match is not None:
        if etag is None or not _strong_match(parse_tags(if_match), etag):
            return 412
    else:
        ius = headers.get("if-unmodified-since")
        since = parse_http_date(ius) if ius is not None else None
        if since is not None and lm is not None and lm > since:
            return 412
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = parse_tags(if_none_match)
        if "*" in tags or (etag is not None and _weak_match(tags, etag)):
            return 304 if safe else 412
        return None
    ims = headers.get("if-modified-since")
    if safe and ims is not None and lm is not None:
        since = parse_http_date(ims)
        if since is not None and lm <= since:
            return 304
    return None


#: OpenAPI ``headers`` of an answer that carries validators.
VALIDATOR_HEADERS: dict[str, Any] = {
    "ETag": {"description": "Entity tag of the representation: send it back in `If-None-Match` (weak comparison; "
                            "`W/` when the answer was compressed).", "schema": {"type": "string"}},
    "Last-Modified": {"description": "When the representation last changed (HTTP-date, whole seconds): send it "
                                     "back in `If-Modified-Since`.", "schema": {"type": "string"}},
}


def conditional_responses(ok: Mapping[int | str, Mapping[str, Any]] | None = None, *statuses: int,
                          **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route answered by :func:`conditional_response`: ``ok``'s 200 entry
    with the validator headers, 304 and 412, and the error ``statuses`` (see `its.errors.error_responses`)."""
    base = dict((ok or {}).get(200, {}))
    out: dict[int | str, dict[str, Any]] = {
        200: {**base, "headers": {**base.get("headers", {}), **VALIDATOR_HEADERS}},
        304: {"description": "Not modified: `If-None-Match` matches the current tag (`*`: any), or without it, "
                             "nothing changed since `If-Modified-Since`. No body.", "headers": dict(VALIDATOR_HEADERS)},
    }
    out.update(error_responses(412, *statuses, **descriptions))
    return out


def conditional_response(request: Request, body: bytes | Callable[[], bytes], *, media_type: str, etag: str,
                         last_modified_s: float | None = None, cache_control: str = "no-cache",
                         headers: Mapping[str, str] | None = None) -> Response:
    """``body`` with its validators, or the 304/412 the request's preconditions call for.

    Parameters
    ----------
    request : Request
    body : bytes or callable
        The selected representation (or a function making it, called only when it is sent).
    media_type : str
        Its content type.
    etag : str
        Its entity tag (:func:`entity_tag`, or a version tag).
    last_modified_s : float, optional
        When it last changed, epoch s (``Last-Modified``, whole seconds).
    cache_control : str
        ``Cache-Control`` of both answers (``no-cache``: store, but revalidate every time).
    headers : mapping, optional
        More response headers.
    """
    out = {"ETag": etag, "Cache-Control": cache_control, **(headers or {})}
    if last_modified_s is not None:
        out["Last-Modified"] = http_date(last_modified_s)
    status = evaluate(request.method, request.headers, etag, last_modified_s)
    if status == 304:
        return Response(status_code=304, headers={**out, "Vary": "Accept-Encoding"})
    if status == 412:
        return envelope(412, "precondition_failed", "the representation does not match If-Match/If-Unmodified-Since",
                        out)
    return Response(body() if callable(body) else body, media_type=media_type, headers=out)
