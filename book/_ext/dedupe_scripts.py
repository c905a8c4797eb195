"""Sphinx extension: each page lists every script once.

sphinx-thebe and sphinx-togglebutton register inline scripts (``const THEBE_JS_URL = ...``)
both with the application and with the builder, so Jupyter Book 1 pages carried them twice
(once with filename ``None``, once with ``''``): a JavaScript error on every page,
"Identifier 'THEBE_JS_URL' has already been declared".
"""


def _dedupe(app, pagename, templatename, context, doctree):
    seen, scripts = set(), []
    for js in context.get("script_files", []):
        attrs = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", str(js)) or None, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key not in seen:
            seen.add(key)
            scripts.append(js)
    context["script_files"] = scripts


def setup(app):
    app.connect("html-page-context", _dedupe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
