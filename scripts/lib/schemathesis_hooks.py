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


def _accept_for(operation):
    """The next of the operation's documented 2xx media types, in turn, or None."""
    media = _success_media_types(operation)
    if not media:
        return None
    with _turns_lock:
        turn = _turns.get(operation.label, 0)
        _turns[operation.label] = turn + 1
    return media[turn % len(media)]


@schemathesis.hook
def before_call(context, case, kwargs):
    # Edits the case itself just before it is sent, in every phase (examples, coverage,
    # fuzzing, stateful: the case-generation hooks do not run in all of them); schemathesis
    # then re-derives whether the case is still a negative one from what is actually sent,
    # and its reproduction commands show the edited request.
    operation = case.operation

    # Atlas's v2 operations choose the response version by `Accept:
    # application/vnd.atlas.<date>+json` and answer 406 without one, as Atlas does; a client
    # always sends one. schemathesis sends no Accept of its own, so every v2 request would stop
    # at the 406 and never reach a resource. When the document does not declare Accept as a
    # parameter (then the generator chooses it), each case gets one of the operation's
    # documented 2xx media types, in turn, so that every documented version is exercised.
    headers = case.headers or {}
    if not _declares_accept(operation) and not any(k.lower() == "accept" for k in headers):
        accept = _accept_for(operation)
        if accept is not None:
            case.headers = {**headers, "Accept": accept}

    # `envelope=true` wraps every body as Atlas does, `{"status": <code>, "content": <body>}`,
    # and answers 200 whatever the real status. OpenAPI cannot make a response's schema depend
    # on a query parameter's value, so a document that describes the plain bodies (what every
    # client reads) can never also describe the enveloped ones: a generated `envelope=true`
    # would fail the schema and status checks on every operation without showing anything
    # about the server. The envelope has tests of its own (tests/api/server.rs).
    query = case.query or {}
    if any(k.lower() == "envelope" for k in query):
        case.query = {k: v for k, v in query.items() if k.lower() != "envelope"}
