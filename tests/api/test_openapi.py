"""docs/openapi.json against the router and the real responses.

- every route of `flora routes` is documented, and every documented operation is routed;
- every example in the document validates against its schema;
- real responses of a running flora validate against the documented schema of their status.
"""
import json
import os
import re
import unittest
import urllib.parse

import jsonschema

from floratest import Flora, SOURCE_DIR

DOC_PATH = os.path.join(SOURCE_DIR, "docs", "openapi.json")
SMALL = os.path.join(SOURCE_DIR, "tests", "data", "catalog", "small.json")


def load_doc():
    with open(DOC_PATH, encoding="utf-8") as f:
        return json.load(f)


def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def validator_for(doc, schema):
    """A Draft 2020-12 validator whose $refs resolve inside the OpenAPI document."""
    resolver = jsonschema.RefResolver(base_uri="", referrer=doc)
    return jsonschema.Draft202012Validator(schema, resolver=resolver,
                                           format_checker=jsonschema.FormatChecker())


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method.upper(), op


class OpenApiDocument(unittest.TestCase):
    def setUp(self):
        self.doc = load_doc()

    def test_structure(self):
        self.assertTrue(self.doc["openapi"].startswith("3."))
        ids = set()
        for path, method, op in operations(self.doc):
            self.assertIn("operationId", op, (method, path))
            self.assertNotIn(op["operationId"], ids)
            ids.add(op["operationId"])
            self.assertTrue(op.get("responses"), (method, path))
            for param in re.findall(r"{(\w+)}", path):
                names = [resolve(self.doc, p)["name"] for p in op.get("parameters", [])]
                self.assertIn(param, names, (method, path))
        jsonschema.Draft202012Validator.check_schema(
            {"$defs": self.doc["components"]["schemas"]})

    def test_examples_validate(self):
        count = 0
        for path, method, op in operations(self.doc):
            for status, response in op["responses"].items():
                response = resolve(self.doc, response)
                for ctype, media in response.get("content", {}).items():
                    if "example" in media:
                        validator_for(self.doc, media["schema"]).validate(media["example"])
                        count += 1
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "example" in body:
                validator_for(self.doc, body["schema"]).validate(body["example"])
                count += 1
        self.assertGreater(count, 5)

    def test_a_wrong_example_is_caught(self):
        page = self.doc["components"]["schemas"]["ProductPage"]
        with self.assertRaises(jsonschema.ValidationError):
            validator_for(self.doc, page).validate({"items": [], "total": "many", "page": 1,
                                                    "pageSize": 24, "pages": 0})


class RouterMatchesDocument(unittest.TestCase):
    def test_every_route_documented_and_every_operation_routed(self):
        flora = Flora()
        try:
            out = flora.run("routes").stdout
        finally:
            flora.close()
        routed = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].isupper():
                routed.add((parts[0], parts[1]))
        documented = {(m, p) for p, m, _ in operations(load_doc())}
        self.assertTrue(routed, out)
        self.assertEqual(routed - documented, set(), "routes missing from docs/openapi.json")
        self.assertEqual(documented - routed, set(), "documented operations with no route")


class ResponsesMatchSchemas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()
        cls.flora = Flora()
        cls.flora.run("migrate", "up")
        cls.flora.run("import", "catalog", SMALL)
        cls.flora.start()

    @classmethod
    def tearDownClass(cls):
        cls.flora.close()

    def check(self, method, template, path, status_expected, body=None, admin=False):
        status, headers, payload = self.flora.request(method, path, body=body, admin=admin)
        self.assertEqual(status, status_expected, payload)
        op = self.doc["paths"][template][method.lower()]
        response = resolve(self.doc, op["responses"][str(status)])
        content = response.get("content")
        if not content:
            return payload
        ctype = headers["content-type"].split(";")[0]
        self.assertIn(ctype, content, (method, path))
        schema = content[ctype]["schema"]
        if ctype == "application/json":
            validator_for(self.doc, schema).validate(payload)
        return payload

    def test_storefront_responses(self):
        self.check("GET", "/healthz", "/healthz", 200)
        self.check("GET", "/readyz", "/readyz", 200)
        self.check("GET", "/metrics", "/metrics", 200)
        self.check("GET", "/api/v1/categories", "/api/v1/categories", 200)
        page = self.check("GET", "/api/v1/products", "/api/v1/products?q=" + urllib.parse.quote("розы"), 200)
        self.check("GET", "/api/v1/products", "/api/v1/products?sort=bogus", 400)
        slug = page["items"][0]["slug"]
        self.check("GET", "/api/v1/products/{slug}", "/api/v1/products/" + slug, 200)
        self.check("GET", "/api/v1/products/{slug}", "/api/v1/products/none-such", 404)

    def test_admin_responses(self):
        new = {"sku": "OA-1", "name": "Проверка схемы",
               "variants": [{"sku": "OA-1-V", "name": "M", "price": 100, "stock": 1}]}
        created = self.check("POST", "/api/v1/admin/products", "/api/v1/admin/products", 201, new, True)
        self.check("POST", "/api/v1/admin/products", "/api/v1/admin/products", 409, new, True)
        self.check("POST", "/api/v1/admin/products", "/api/v1/admin/products", 422, {"sku": "OA-2"}, True)
        self.check("POST", "/api/v1/admin/products", "/api/v1/admin/products", 401, new)
        slug_path = "/api/v1/admin/products/" + created["slug"]
        self.check("PATCH", "/api/v1/admin/products/{slug}", slug_path, 200, {"name": "Проверка схемы 2"}, True)
        self.check("POST", "/api/v1/admin/variants/{sku}/stock", "/api/v1/admin/variants/OA-1-V/stock", 200,
                   {"delta": 2}, True)
        self.check("POST", "/api/v1/admin/variants/{sku}/stock", "/api/v1/admin/variants/OA-1-V/stock", 409,
                   {"delta": -5}, True)
        self.check("DELETE", "/api/v1/admin/products/{slug}", slug_path, 204, None, True)
        self.check("DELETE", "/api/v1/admin/products/{slug}", slug_path, 404, None, True)
        cat = self.check("POST", "/api/v1/admin/categories", "/api/v1/admin/categories", 201,
                         {"name": "Тестовая категория"}, True)
        cpath = "/api/v1/admin/categories/" + cat["slug"]
        self.check("PATCH", "/api/v1/admin/categories/{slug}", cpath, 200, {"parentSlug": "podarki"}, True)
        self.check("DELETE", "/api/v1/admin/categories/{slug}", cpath, 204, None, True)


if __name__ == "__main__":
    unittest.main()
