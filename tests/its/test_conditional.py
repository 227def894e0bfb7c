"""Conditional requests per RFC 9110 section 13: the precondition order, weak and strong comparison,
HTTP-dates, and the response helper on a real Starlette request."""

from __future__ import annotations

from starlette.requests import Request

from its.conditional import (
    conditional_response,
    conditional_responses,
    entity_tag,
    evaluate,
    http_date,
    parse_http_date,
    parse_tags,
    weak,
)

TAG = entity_tag(b"content")
MODIFIED = 1_771_268_000.4  # a fraction of a second: Last-Modified has whole seconds
DATE = http_date(MODIFIED)


def _request(method: str = "GET", **headers: str) -> Request:
    scope = {"type": "http", "method": method, "path": "/x", "query_string": b"",
             "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]}
    return Request(scope)


def check(method: str = "GET", **headers: str) -> int | None:
    return evaluate(method, _request(method, **headers).headers, TAG, MODIFIED)


def test_tags_and_dates() -> None:
    assert TAG.startswith('"') and TAG.endswith('"') and len(TAG) == 34 and entity_tag(b"content") == TAG
    assert entity_tag(b"content", ".json") == TAG[:-1] + '.json"' and entity_tag(b"other") != TAG
    assert weak(TAG) == "W/" + TAG and weak(weak(TAG)) == "W/" + TAG
    assert DATE == "Mon, 16 Feb 2026 18:53:20 GMT"
    assert parse_http_date(DATE) == 1_771_268_000.0
    # the two obsolete forms a recipient must accept, and garbage
    assert parse_http_date("Monday, 16-Feb-26 18:53:20 GMT") == 1_771_268_000.0
    assert parse_http_date("Mon Feb 16 18:53:20 2026") == 1_771_268_000.0
    assert parse_http_date("yesterday") is None and parse_http_date("") is None
    assert parse_tags('"a", W/"b" ,"c,d", junk, "e"') == ['"a"', 'W/"b"', '"c,d"', '"e"']
    assert parse_tags(" * ") == ["*"] and parse_tags('"unterminated') == []


def test_if_none_match_weak_comparison_and_star() -> None:
    assert check(if_none_match=TAG) == 304
    assert check(if_none_match=weak(TAG)) == 304  # weak comparison: W/ is ignored
    assert check(if_none_match=f'"x", {TAG}') == 304
    assert check(if_none_match="*") == 304  # the resource exists
    assert check("HEAD", if_none_match=TAG) == 304
    assert check(if_none_match='"x"') is None
    assert check("POST", if_none_match=TAG) == 412 and check("PUT", if_none_match="*") == 412


def test_if_modified_since() -> None:
    assert check(if_modified_since=DATE) == 304  # not modified since that second
    assert check(if_modified_since=http_date(MODIFIED + 60)) == 304
    assert check(if_modified_since=http_date(MODIFIED - 1)) is None
    assert check(if_modified_since="not a date") is None  # ignored
    assert check("POST", if_modified_since=DATE) is None  # GET and HEAD only
    assert evaluate("GET", _request(if_modified_since=DATE).headers, TAG, None) is None  # no Last-Modified


def test_if_none_match_takes_precedence_over_if_modified_since() -> None:
    assert check(if_none_match='"x"', if_modified_since=DATE) is None
    assert check(if_none_match=TAG, if_modified_since=http_date(MODIFIED - 3600)) == 304


def test_if_match_and_if_unmodified_since() -> None:
    assert check(if_match=TAG) is None and check(if_match="*") is None
    assert check(if_match=weak(TAG)) == 412  # strong comparison: a weak tag never matches
    assert check(if_match='"x"') == 412
    assert evaluate("GET", _request(if_match=weak(TAG)).headers, weak(TAG), MODIFIED) == 412
    assert check(if_unmodified_since=DATE) is None
    assert check(if_unmodified_since=http_date(MODIFIED - 10)) == 412
    # If-Match wins over If-Unmodified-Since, and both come before If-None-Match
    assert check(if_match=TAG, if_unmodified_since=http_date(MODIFIED - 10)) is None
    assert check(if_match='"x"', if_none_match=TAG) == 412


def test_response_helper() -> None:
    full = conditional_response(_request(), b"body", media_type="application/x-protobuf", etag=TAG,
                                last_modified_s=MODIFIED, headers={"X-Extra": "1"})
    assert full.status_code == 200 and full.body == b"body"
    assert (full.headers["etag"], full.headers["last-modified"], full.headers["cache-control"]) == (TAG, DATE, "no-cache")
    assert full.headers["x-extra"] == "1"
    made: list[int] = []

    def make() -> bytes:
        made.append(1)
        return b"lazy"

    same = conditional_response(_request(if_none_match=TAG), make, media_type="application/json", etag=TAG,
                                last_modified_s=MODIFIED)
    assert same.status_code == 304 and same.body == b"" and not made  # the body is never built
    assert same.headers["etag"] == TAG and same.headers["last-modified"] == DATE
    refused = conditional_response(_request(if_match='"x"'), b"", media_type="application/json", etag=TAG)
    assert refused.status_code == 412 and refused.body.startswith(b'{"error":{"code":"precondition_failed"')
    docs = conditional_responses({200: {"description": "A feed."}}, 404)
    assert set(docs) == {200, 304, 404, 412} and docs[200]["description"] == "A feed."
    assert set(docs[200]["headers"]) == set(docs[304]["headers"]) == {"ETag", "Last-Modified"}
