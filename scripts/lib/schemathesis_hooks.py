"""Hooks of the schemathesis run (scripts/schemathesis), loaded through SCHEMATHESIS_HOOKS.

They only make the generated requests look like what an Atlas client sends; they never change
what is checked.
"""

import threading

import schemathesis


def _resolve(root, node):
    """`node`, following local `$ref`s into the document `root`."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 16:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        node = root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part, {}) if isinstance(node, dict) else {}
        seen += 1
    return node if isinstance(node, dict) else {}


def _success_media_types(operation):
    """The media types the operation documents for its 2xx answers, in document order."""
    root = operation.schema.raw_schema
    responses = _resolve(root, operation.definition.raw).get("responses", {})
    found = []
    for status, response in responses.items():
        if not str(status).startswith("2"):
            continue
        for media in _resolve(root, response).get("content", {}):
            if media not in found:
                found.append(media)
    return found


def _declares_accept(operation):
    return any(p.name.lower() == "accept" for p in operation.headers)


_turns = {}
_turns_lock = threading.Lock()


@schemathesis.hook
def map_case(context, case):
    # Atlas's v2 operations choose the response version by `Accept:
    # application/vnd.atlas.<date>+json` and answer 406 without one, as Atlas does; a client
    # always sends one. schemathesis sends no Accept of its own, so every v2 request would stop
    # at the 406 and never reach a resource. When the document does not declare Accept as a
    # parameter (then the generator chooses it), each case gets one of the operation's
    # documented 2xx media types, in turn, so that every documented version is exercised.
    # (A hook on every phase's cases: the coverage phase builds its cases without Hypothesis.)
    operation = context.operation
    if operation is None or _declares_accept(operation):
        return case
    media = _success_media_types(operation)
    headers = dict(case.headers or {})
    if not media or any(k.lower() == "accept" for k in headers):
        return case
    with _turns_lock:
        turn = _turns.get(operation.label, 0)
        _turns[operation.label] = turn + 1
    headers["Accept"] = media[turn % len(media)]
    case.headers = headers
    return case


@schemathesis.hook
def map_query(context, query):
    # `envelope=true` wraps every body as Atlas does, `{"status": <code>, "content": <body>}`,
    # and answers 200 whatever the real status. OpenAPI cannot make a response's schema depend
    # on a query parameter's value, so a document that describes the plain bodies (what every
    # client reads) can never also describe the enveloped ones: the generator's `envelope=true`
    # would fail the schema and status checks on every operation without showing anything
    # about the server. The envelope has tests of its own (tests/api/server.rs).
    if query:
        query.pop("envelope", None)
    return query
