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
    the paths under /v1/; the self-check page's files (/self...) are not API operations."""
    routes = set()
    for p in HTTP_SOURCES:
        with open(p) as f:
            for m in re.finditer(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)",\s*"(/v1/[^"]*)"', f.read()):
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
