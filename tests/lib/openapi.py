"""A small OpenAPI 3.1 checker for the tests: finds the operation a request hit in
api-docs/openapi.yaml and validates the real response body against its JSON Schema (2020-12,
with $ref into the document), using Debian's python3-yaml and python3-jsonschema."""
import os
import glob
import re

import jsonschema
import yaml

SPEC_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "api-docs", "openapi.yaml")
# the route table is in one of the daemon's HTTP sources
HTTP_SOURCES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "src",
                                             "daemon", "http*.c")))

_spec = None


def spec():
    global _spec
    if _spec is None:
        with open(SPEC_PATH) as f:
            _spec = yaml.safe_load(f)
    return _spec


def _template_regex(template):
    # a path parameter may hold '/', as the daemon's routing allows
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("^" + "".join(".+" if p.startswith("{") else re.escape(p)
                                    for p in parts) + "$")


def known(method, path):
    """Whether the spec has an operation for this request (else it is a routing error)."""
    try:
        find_operation(method, path)
        return True
    except AssertionError:
        return False


def find_operation(method, path):
    """(template, operation) for a concrete path such as /v1/mailboxes/a@b.test?x=1: the most
    specific matching template (as the daemon routes), then the method."""
    path = path.split("?", 1)[0]
    best = None
    for template, item in spec()["paths"].items():
        if _template_regex(template).match(path):
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            if best is None or literal > best[0]:
                best = (literal, template, item)
    if best is None or method.lower() not in best[2]:
        raise AssertionError(f"{method} {path}: not in api-docs/openapi.yaml")
    return best[1], best[2][method.lower()]


def _resolve(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = spec()
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def validate(method, path, status, doc):
    """Raise AssertionError unless the spec documents this status for the operation and doc
    (parsed JSON, or None for an empty body) matches its schema."""
    template, op = find_operation(method, path)
    responses = op.get("responses", {})
    resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") \
        or responses.get("default")
    if resp is None:
        raise AssertionError(f"{method} {template}: status {status} is not documented")
    resp = _resolve(resp)
    content = resp.get("content")
    if not content:
        if doc is not None:
            raise AssertionError(f"{method} {template} {status}: documented without a body")
        return
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return
    resolver = jsonschema.RefResolver(base_uri="", referrer=spec())
    v = jsonschema.Draft202012Validator(schema, resolver=resolver)
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise AssertionError(f"{method} {template} {status}: response does not match the spec "
                             f"at {list(e.path)}: {e.message}")


def served_routes():
    """(method, pattern) of every API row of the daemon's route table (src/daemon/http_route.c):
    the paths under /v1/ and /metrics; the self-check page's files (/self...) are not API
    operations."""
    routes = set()
    for p in HTTP_SOURCES:
        with open(p) as f:
            for m in re.finditer(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)",\s*"(/v1/[^"]*|/metrics)"',
                                 f.read()):
                routes.add((m.group(1), m.group(2)))
    return routes


def spec_routes():
    """(method, pattern) of every operation in the spec, with {name} written {} as the
    daemon's table writes it."""
    out = set()
    for template, item in spec()["paths"].items():
        for method in item:
            if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                out.add((method.upper(), re.sub(r"\{[^}]+\}", "{}", template)))
    return out


# --- examples (issue 11: every operation's request and 2xx response bodies have one) ---

METHODS = ("get", "put", "post", "patch", "delete")


def operations():
    """(method, template, operation) of every operation in the spec, in document order."""
    for template, item in spec()["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), template, item[method]


def media_examples(media):
    """The example values of one media type object: its `example`, or the `value` of each of
    its `examples` (a map of Example objects); [] when it has none."""
    if "example" in media:
        return [media["example"]]
    return [_resolve(e)["value"] for e in media.get("examples", {}).values()]


def example_sites(op):
    """(where, media type, media object, schema) of every body of the operation that needs an
    example: each media type of the request body, and each media type of every 2xx response
    with a body. where is "request" or the status."""
    body = _resolve(op.get("requestBody", {}))
    for mtype, media in body.get("content", {}).items():
        yield "request", mtype, media, media.get("schema")
    for status, resp in op.get("responses", {}).items():
        if not str(status).startswith("2"):
            continue
        for mtype, media in _resolve(resp).get("content", {}).items():
            yield str(status), mtype, media, media.get("schema")


def missing_examples():
    """"METHOD /path where mediatype" for every body the spec gives no example."""
    out = []
    for method, template, op in operations():
        for where, mtype, media, _ in example_sites(op):
            if not media_examples(media):
                out.append(f"{op.get('operationId', '?')} ({method} {template}) {where} {mtype}")
    return out


def schema_errors(schema, doc):
    """The messages of every way doc fails schema (2020-12, $ref into the spec); [] if valid."""
    resolver = jsonschema.RefResolver(base_uri="", referrer=spec())
    v = jsonschema.Draft202012Validator(schema, resolver=resolver)
    return [f"at {list(e.path)}: {e.message}"
            for e in sorted(v.iter_errors(doc), key=lambda e: list(e.path))]


def shape_diff(example, real, path="", allowed=None):
    """How the shape of real differs from example's: at every object level the same set of
    keys, recursively (for arrays, element by element as far as both go, so at least the first
    elements), and an object or array on one side where the other has none. allowed maps a
    member's path (e.g. "results[2].targets", "mailbox") to the reason it may be on one side
    only, or differ in kind; the paths it excused are returned in `used`. Returns
    (differences, used)."""
    allowed = allowed or {}
    diffs, used = [], set()

    def walk(e, r, p):
        if isinstance(e, dict) and isinstance(r, dict):
            for k in sorted(set(e) ^ set(r)):
                kp = f"{p}.{k}" if p else k
                if kp in allowed:
                    used.add(kp)
                else:
                    side = "example" if k in e else "real response"
                    diffs.append(f"{kp}: only in the {side}")
            for k in sorted(set(e) & set(r)):
                walk(e[k], r[k], f"{p}.{k}" if p else k)
        elif isinstance(e, list) and isinstance(r, list):
            # element by element, as far as both go (at least the first elements)
            for i, (ei, ri) in enumerate(zip(e, r)):
                walk(ei, ri, f"{p}[{i}]")
        elif isinstance(e, (dict, list)) or isinstance(r, (dict, list)):
            if p in allowed:
                used.add(p)
            else:
                diffs.append(f"{p or '(body)'}: {type(e).__name__} in the example, "
                             f"{type(r).__name__} in the real response")

    walk(example, real, path)
    return diffs, used
