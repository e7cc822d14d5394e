"""The ILL JSON API (CONTRACTS section 6): tokens, requests, cancel, staff actions.

Callers authenticate with ``Authorization: Bearer TOKEN`` from ``POST /api/tokens`` (a
browser page may use its session cookie and send ``X-CSRF-Token``). Errors:
``422 {"errors": {field: message}}`` for invalid fields (``?lang=en`` for English
messages), otherwise ``{"error": "..."}`` with 401, 403, 404, 409 or 429.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, request

from broker.kernel.errors import BalisError, Throttled, ValidationFailed
from ill.values import Actor
from web.ill_context import current_actor, ill, service, status_of

bp = Blueprint("ill_api", __name__, url_prefix="/api")


class Unauthorized(BalisError, PermissionError):
    """No valid token or session."""


@bp.errorhandler(BalisError)
def _error(exc: BalisError):
    if isinstance(exc, Unauthorized):
        response = jsonify(error=str(exc))
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="balis"'
        return response
    if isinstance(exc, ValidationFailed):
        english = request.args.get("lang") == "en"
        return jsonify(errors=exc.errors_en if english else exc.errors), 422
    status = status_of(exc)
    if status == 500:
        raise exc
    response = jsonify(error=str(exc))
    response.status_code = status
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _actor() -> Actor:
    actor = current_actor()
    if actor is None:
        raise Unauthorized("log in first: POST /api/tokens {\"login\", \"password\"}, then "
                           "send Authorization: Bearer TOKEN")
    return actor


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "请求体须为 JSON 对象"},
                               {"body": "the body must be a JSON object"})
    return body


def _date(name: str) -> dt.date | None:
    text = request.args.get(name)
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed({name: f"{name} 须为 YYYY-MM-DD"},
                               {name: f"{name} must be YYYY-MM-DD"}) from None


def _request_json(view) -> dict:
    data = view.as_dict()
    for key, value in data.items():
        if isinstance(value, dt.date | dt.datetime):
            data[key] = value.isoformat()
    return data


@bp.post("/tokens")
def tokens():
    body = _body()
    with ill().session() as s:
        token = service().issue_token(s, str(body.get("login") or ""),
                                      str(body.get("password") or ""))
    return jsonify(token=token)  # 200: CONTRACTS section 6 names 201 only for requests


@bp.post("/ill/requests")
def create_request():
    actor = _actor()
    body = _body()
    key = request.headers.get("Idempotency-Key") or body.pop("idempotency_key", None)
    if key is not None and not isinstance(key, str):
        raise ValidationFailed({"idempotency_key": "须为文本"},
                               {"idempotency_key": "must be text"})
    with ill().session() as s:
        view = service().create_request(s, actor, body, idempotency_key=key)
    return jsonify(_request_json(view)), 201


@bp.get("/ill/requests")
def list_requests():
    actor = _actor()
    statuses = request.args.getlist("status") or None
    side = request.args.get("side")
    with ill().session() as s:
        views = service().list_requests(s, actor, date_from=_date("from"), date_to=_date("to"),
                                        status=statuses, side=side)
    return jsonify([view.row() for view in views])  # CONTRACTS 6: the requests themselves


@bp.get("/ill/requests/<int:request_id>")
def get_request(request_id: int):
    actor = _actor()
    with ill().session() as s:
        timeline = service().timeline(s, actor, request_id)
    data = _request_json(timeline.request)
    data["events"] = [_request_json(event) for event in timeline.events]
    data["next_step"] = timeline.next_step
    data["actions"] = list(timeline.actions)
    return jsonify(data)


@bp.post("/ill/requests/<int:request_id>/cancel")
def cancel(request_id: int):
    actor = _actor()
    body = request.get_json(silent=True) or {}
    with ill().session() as s:
        outcome = service().cancel(s, actor, request_id, reason=body.get("reason")
                                   if isinstance(body, dict) else None)
    return jsonify(request=_request_json(outcome.request), cancelled=outcome.cancelled,
                   cancel_requested=outcome.cancel_requested, message=outcome.message)


@bp.post("/ill/requests/<int:request_id>/actions")
def act(request_id: int):
    actor = _actor()
    body = _body()
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise ValidationFailed({"action": "请指定操作"}, {"action": "action is required"})
    version = body.get("version")
    with ill().session() as s:
        view = service().act(s, actor, request_id, action, reason=body.get("reason"),
                             batch=body.get("batch"),
                             expected_version=version if isinstance(version, int) else None)
    return jsonify(_request_json(view))
