"""The catalog over HTTP on the real binary: listing, filters, search, errors, admin writes."""
import json
import os
import unittest
import urllib.parse

from floratest import Flora, SOURCE_DIR, shared_path

SMALL = os.path.join(SOURCE_DIR, "tests", "data", "catalog", "small.json")


def q(**params):
    return "/api/v1/products?" + urllib.parse.urlencode(params)


class CatalogApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.flora = Flora()
        cls.flora.run("migrate", "up")
        out = cls.flora.run("import", "catalog", SMALL)
        cls.import_output = out.stdout + out.stderr
        cls.flora.start()

    @classmethod
    def tearDownClass(cls):
        cls.flora.close()

    def get(self, path):
        return self.flora.request("GET", path)

    def test_listing_default_page(self):
        status, headers, body = self.get("/api/v1/products")
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["content-type"].startswith("application/json"))
        self.assertEqual(body["total"], 4)
        self.assertEqual(body["page"], 1)
        self.assertEqual(body["pageSize"], 24)
        self.assertEqual(len(body["items"]), 4)
        item = body["items"][0]
        self.assertRegex(item["_id"], "^[0-9a-f]{24}$")
        self.assertNotIn("flowerTerms", item)

    def test_sort_by_price_both_ways(self):
        _, _, asc = self.get(q(sort="price"))
        prices = [p["price"] for p in asc["items"]]
        self.assertEqual(prices, sorted(prices))
        self.assertEqual(prices[0], 150000)
        _, _, desc = self.get(q(sort="-price"))
        self.assertEqual([p["price"] for p in desc["items"]], sorted(prices, reverse=True))

    def test_derived_price_is_cheapest_variant_and_discount_kept(self):
        _, _, body = self.get("/api/v1/products/" + self.slug_of("T-ROSE-MIX"))
        self.assertEqual(body["price"], 320000)
        self.assertEqual(body["compareAtPrice"], 380000)
        _, _, red = self.get("/api/v1/products/" + self.slug_of("T-ROSE-RED"))
        self.assertEqual(red["price"], 450000)
        self.assertTrue(red["inStock"])

    def slug_of(self, sku):
        _, _, body = self.get(q(pageSize=100))
        for p in body["items"]:
            if p["sku"] == sku:
                return p["slug"]
        self.fail("no product with sku " + sku)

    def test_category_includes_subcategories(self):
        _, _, body = self.get(q(category="bukety", sort="price"))
        self.assertEqual({p["sku"] for p in body["items"]}, {"T-ROSE-RED", "T-ROSE-MIX", "T-TULIP"})
        _, _, body = self.get(q(category="rozy"))
        self.assertEqual(body["total"], 2)
        _, _, body = self.get(q(category="no-such-category"))
        self.assertEqual(body["total"], 0)
        self.assertEqual(body["items"], [])

    def test_price_range_in_stock_tag(self):
        _, _, body = self.get(q(minPrice=200000, maxPrice=400000))
        self.assertEqual({p["sku"] for p in body["items"]}, {"T-ROSE-MIX", "T-TULIP"})
        _, _, body = self.get(q(inStock="true"))
        self.assertNotIn("T-BEAR", {p["sku"] for p in body["items"]})
        self.assertEqual(body["total"], 3)
        _, _, body = self.get(q(tag="march_8"))
        self.assertEqual({p["sku"] for p in body["items"]}, {"T-ROSE-MIX", "T-TULIP"})

    def test_flower_filter_matches_word_forms(self):
        for word in ("роза", "розы", "Розой"):
            _, _, body = self.get(q(flower=word))
            self.assertEqual({p["sku"] for p in body["items"]}, {"T-ROSE-RED", "T-ROSE-MIX"}, word)
        _, _, body = self.get(q(flower="эвкалипт"))
        self.assertEqual([p["sku"] for p in body["items"]], ["T-ROSE-MIX"])

    def test_text_search_ranked_with_russian_intact(self):
        status, _, body = self.get(q(q="розы"))
        self.assertEqual(status, 200, body)
        skus = [p["sku"] for p in body["items"]]
        self.assertEqual(set(skus), {"T-ROSE-RED", "T-ROSE-MIX"})
        scores = [p["score"] for p in body["items"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertIn("роз", body["items"][0]["name"].lower())
        _, _, body = self.get(q(q="тюльпаны", sort="price"))
        self.assertEqual([p["sku"] for p in body["items"]], ["T-TULIP"])
        self.assertEqual(body["items"][0]["name"], "Весенние тюльпаны")

    def test_pagination(self):
        _, _, p1 = self.get(q(sort="price", pageSize=3))
        _, _, p2 = self.get(q(sort="price", pageSize=3, page=2))
        self.assertEqual(p1["total"], 4)
        self.assertEqual(p1["pages"], 2)
        self.assertEqual(len(p1["items"]), 3)
        self.assertEqual(len(p2["items"]), 1)
        self.assertFalse({p["sku"] for p in p1["items"]} & {p["sku"] for p in p2["items"]})
        _, _, p9 = self.get(q(page=9))
        self.assertEqual(p9["items"], [])

    def test_bad_parameters_name_the_parameter(self):
        cases = {
            q(sort="cheapest"): "sort",
            q(page=0): "page",
            q(page="x"): "page",
            q(pageSize=1000): "pageSize",
            q(minPrice=-5): "minPrice",
            q(maxPrice="1e3"): "maxPrice",
            q(inStock="maybe"): "inStock",
            q(colour="red"): "colour",
            q(minPrice=500, maxPrice=100): "minPrice",
            q(q="x" * 300): "q",
            q(sort="relevance"): "sort",
        }
        for path, field in cases.items():
            status, _, body = self.get(path)
            self.assertEqual(status, 400, path)
            self.assertEqual(body["error"]["field"], field, path)
            self.assertEqual(body["error"]["code"], "invalid_argument")

    def test_unknown_route_and_product(self):
        status, headers, body = self.get("/api/v1/nothing-here")
        self.assertEqual(status, 404)
        self.assertIn("error", body)
        status, _, body = self.get("/api/v1/products/no-such-bouquet")
        self.assertEqual(status, 404)
        self.assertEqual(body["error"]["code"], "not_found")

    def test_category_tree(self):
        status, _, body = self.get("/api/v1/categories")
        self.assertEqual(status, 200)
        roots = {c["slug"]: c for c in body["categories"]}
        self.assertEqual(set(roots), {"bukety", "podarki"})
        self.assertEqual([c["slug"] for c in roots["bukety"]["children"]], ["rozy", "tiulpany"])
        self.assertEqual(roots["bukety"]["productCount"], 3)
        self.assertEqual(roots["bukety"]["children"][0]["productCount"], 2)

    def test_admin_requires_token(self):
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", body={"sku": "X"})
        self.assertEqual(status, 401, body)
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", body={"sku": "X"},
                                             headers={"Authorization": "Bearer wrong"})
        self.assertIn(status, (401, 403))

    def test_admin_product_lifecycle(self):
        new = {"sku": "T-PEONY", "name": "Пионы Сара Бернар", "categorySlugs": ["bukety"],
               "variants": [{"sku": "T-PEONY-9", "name": "9 шт", "price": 590000, "stock": 2,
                             "composition": [{"flower": "Пион", "stems": 9}]}]}
        status, headers, body = self.flora.request("POST", "/api/v1/admin/products", body=new, admin=True)
        self.assertEqual(status, 201, body)
        self.assertEqual(body["slug"], "piony-sara-bernar")
        self.assertEqual(headers.get("location"), "/api/v1/products/piony-sara-bernar")
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", body=new, admin=True)
        self.assertEqual(status, 409, body)
        # stock: conditional, never below zero
        path = "/api/v1/admin/variants/T-PEONY-9/stock"
        status, _, body = self.flora.request("POST", path, body={"delta": -2}, admin=True)
        self.assertEqual((status, body.get("stock")), (200, 0), body)
        status, _, body = self.flora.request("POST", path, body={"delta": -1}, admin=True)
        self.assertEqual(status, 409, body)
        _, _, page = self.get("/api/v1/products/piony-sara-bernar")
        self.assertFalse(page["inStock"])
        status, _, body = self.flora.request("POST", path, body={"delta": 4}, admin=True)
        self.assertEqual(body["stock"], 4)
        _, _, page = self.get("/api/v1/products/piony-sara-bernar")
        self.assertTrue(page["inStock"])
        status, _, body = self.flora.request("POST", "/api/v1/admin/variants/NOPE/stock", body={"delta": 1},
                                             admin=True)
        self.assertEqual(status, 404)
        # patch re-derives
        status, _, body = self.flora.request(
            "PATCH", "/api/v1/admin/products/piony-sara-bernar",
            body={"variants": [{"sku": "T-PEONY-9", "name": "9 шт", "price": 550000},
                               {"sku": "T-PEONY-15", "name": "15 шт", "price": 820000, "stock": 1}]},
            admin=True)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["price"], 550000)
        self.assertEqual(body["variants"][0]["stock"], 4)  # kept from the stored variant
        status, _, _ = self.flora.request("DELETE", "/api/v1/admin/products/piony-sara-bernar", admin=True)
        self.assertEqual(status, 204)
        status, _, _ = self.get("/api/v1/products/piony-sara-bernar")
        self.assertEqual(status, 404)

    def test_admin_validation_lists_every_field(self):
        bad = {"sku": "bad sku!", "name": "", "variants": [{"sku": "V1", "name": "x", "price": -1, "stock": -3}],
               "unknownField": 1}
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", body=bad, admin=True)
        self.assertEqual(status, 422, body)
        paths = {d["path"] for d in body["error"]["details"]}
        for expected in ("sku", "name", "variants.0.price", "variants.0.stock", "unknownField"):
            self.assertIn(expected, paths, body)
        # nothing was stored
        _, _, page = self.get(q(pageSize=100))
        self.assertNotIn("bad sku!", {p["sku"] for p in page["items"]})

    def test_malformed_and_oversized_bodies(self):
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", raw=b"{not json",
                                             headers={"Content-Type": "application/json"}, admin=True)
        self.assertEqual(status, 400, body)
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", raw=b"[1,2]",
                                             headers={"Content-Type": "application/json"}, admin=True)
        self.assertEqual(status, 400, body)
        big = b'{"name": "' + b"a" * (2 * 1024 * 1024) + b'"}'
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", raw=big,
                                             headers={"Content-Type": "application/json"}, admin=True)
        self.assertEqual(status, 413, body)

    def test_category_move_rewrites_products(self):
        status, _, body = self.flora.request("POST", "/api/v1/admin/categories",
                                             body={"name": "Сезонные", "slug": "sezonnye"}, admin=True)
        self.assertEqual(status, 201, body)
        status, _, body = self.flora.request("PATCH", "/api/v1/admin/categories/tiulpany",
                                             body={"parentSlug": "sezonnye"}, admin=True)
        self.assertEqual(status, 200, body)
        self.assertEqual([a["slug"] for a in body["ancestors"]], ["sezonnye"])
        _, _, page = self.get(q(category="sezonnye"))
        self.assertEqual([p["sku"] for p in page["items"]], ["T-TULIP"])
        _, _, page = self.get(q(category="bukety"))
        self.assertNotIn("T-TULIP", {p["sku"] for p in page["items"]})
        status, _, body = self.flora.request("PATCH", "/api/v1/admin/categories/sezonnye",
                                             body={"parentSlug": "tiulpany"}, admin=True)
        self.assertEqual(status, 409, body)
        status, _, body = self.flora.request("DELETE", "/api/v1/admin/categories/sezonnye", admin=True)
        self.assertEqual(status, 409, body)  # it has a subcategory
        # move it back so other tests see the original tree
        status, _, body = self.flora.request("PATCH", "/api/v1/admin/categories/tiulpany",
                                             body={"parentSlug": "bukety"}, admin=True)
        self.assertEqual(status, 200, body)
        status, _, _ = self.flora.request("DELETE", "/api/v1/admin/categories/sezonnye", admin=True)
        self.assertEqual(status, 204)


class CatalogHardening(unittest.TestCase):
    """Faults found by attacking the API: each must stay fixed."""

    @classmethod
    def setUpClass(cls):
        cls.flora = Flora()
        cls.flora.run("migrate", "up")
        cls.flora.run("import", "catalog", SMALL)
        cls.flora.start()

    @classmethod
    def tearDownClass(cls):
        cls.flora.close()

    def post_raw(self, raw):
        return self.flora.request("POST", "/api/v1/admin/products", raw=raw.encode(),
                                  headers={"Content-Type": "application/json"}, admin=True)

    def test_duplicate_json_keys_refused(self):
        status, _, body = self.post_raw('{"sku": "DK1", "sku": "DK2", "name": "x", '
                                        '"variants": [{"sku": "DK1-V", "name": "v", "price": 1}]}')
        self.assertEqual(status, 400, body)
        self.assertIn("duplicate", body["error"]["message"])

    def test_out_of_range_integers_refused(self):
        for number in ("18446744073709551616", "1" + "0" * 400):
            status, _, body = self.post_raw('{"sku": "BIG", "name": "x", "variants": '
                                            '[{"sku": "BIG-V", "name": "v", "price": %s}]}' % number)
            self.assertEqual(status, 400, (number[:30], body))

    def test_nul_in_strings_refused(self):
        status, _, body = self.post_raw('{"sku": "NUL", "name": "a\\u0000b", '
                                        '"variants": [{"sku": "NUL-V", "name": "v", "price": 1}]}')
        self.assertEqual(status, 400, body)

    def test_duplicate_variant_skus_refused(self):
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", admin=True, body={
            "sku": "DV", "name": "Дубли", "variants": [
                {"sku": "DV-X", "name": "a", "price": 100, "stock": 10},
                {"sku": "DV-X", "name": "b", "price": 200, "stock": 0}]})
        self.assertEqual(status, 422, body)
        self.assertIn("variants.1.sku", {d["path"] for d in body["error"]["details"]})

    def test_no_noise_from_derived_fields(self):
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", admin=True, body={
            "sku": "NOISE", "name": "Шум", "variants": [{"sku": "NOISE-V", "name": "v", "price": -5}]})
        self.assertEqual(status, 422, body)
        paths = {d["path"] for d in body["error"]["details"]}
        self.assertEqual(paths, {"variants.0.price"}, body)

    def test_stock_cannot_pass_the_schema_maximum(self):
        path = "/api/v1/admin/variants/T-TULIP-25/stock"
        status, _, body = self.flora.request("POST", path, body={"delta": 1000000}, admin=True)
        self.assertEqual(status, 422, body)
        status, _, body = self.flora.request("POST", path, body={"delta": 1}, admin=True)
        self.assertEqual(status, 200, body)
        self.assertLess(body["stock"], 1000000)
        self.flora.request("POST", path, body={"delta": -1}, admin=True)

    def test_repeated_parameter_refused(self):
        status, _, body = self.flora.request("GET", "/api/v1/products?pageSize=5&pageSize=6")
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["field"], "pageSize")
        status, _, body = self.flora.request("GET", "/api/v1/products?minPrice=%2B5")
        self.assertEqual(status, 400, body)

    def test_admin_answers_hide_query_fields(self):
        status, _, body = self.flora.request("POST", "/api/v1/admin/products", admin=True, body={
            "sku": "HIDE", "name": "Скрытые поля", "categorySlugs": ["rozy"],
            "variants": [{"sku": "HIDE-V", "name": "v", "price": 100,
                          "composition": [{"flower": "Роза", "stems": 1}]}]})
        self.assertEqual(status, 201, body)
        self.assertNotIn("flowerTerms", body)
        self.assertNotIn("categoryTree", body)

    def test_parallel_creates_with_one_name_all_get_slugs(self):
        import concurrent.futures

        def create(i):
            return self.flora.request("POST", "/api/v1/admin/products", admin=True, body={
                "sku": "RACE-%d" % i, "name": "Гонка имён",
                "variants": [{"sku": "RACE-%d-V" % i, "name": "v", "price": 100}]})

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(create, range(16)))
        statuses = [r[0] for r in results]
        self.assertEqual(statuses, [201] * 16, [r[2] for r in results if r[0] != 201][:3])
        self.assertEqual(len({r[2]["slug"] for r in results}), 16)


class FlowwowCatalog(unittest.TestCase):
    """The real florist's catalog from ../shared (skipped in a fresh clone)."""

    @classmethod
    def setUpClass(cls):
        cls.csv = shared_path("catalog", "flowwow", "catalog.csv")
        if not cls.csv:
            raise unittest.SkipTest("../shared/catalog/flowwow/catalog.csv is absent (fresh clone)")
        cls.flora = Flora()
        cls.flora.run("migrate", "up")
        cls.first = cls.flora.run("import", "catalog", cls.csv)
        cls.second = cls.flora.run("import", "catalog", cls.csv)
        cls.flora.start()

    @classmethod
    def tearDownClass(cls):
        cls.flora.close()

    def test_search_roses_cheapest_first(self):
        status, _, body = self.flora.request("GET", q(q="роза", sort="price", pageSize=100))
        self.assertEqual(status, 200, body)
        self.assertGreater(body["total"], 10)
        prices = [p["price"] for p in body["items"]]
        self.assertEqual(prices, sorted(prices))
        for p in body["items"]:
            text = json.dumps(p, ensure_ascii=False).lower()
            self.assertIn("роз", text)
        self.assertIn("Роз", json.dumps(body, ensure_ascii=False))

    def test_composition_searchable_by_flower(self):
        _, _, body = self.flora.request("GET", q(flower="гортензия", pageSize=100))
        self.assertGreater(body["total"], 0)
        for p in body["items"]:
            self.assertTrue(any("гортенз" in f for f in p["flowers"]), p["flowers"])

    def test_reimport_does_not_duplicate(self):
        _, _, body = self.flora.request("GET", q(pageSize=1))
        first_total = body["total"]
        self.assertGreaterEqual(first_total, 100)
        self.assertLessEqual(first_total, 128)
        self.assertIn("unchanged", self.second.stdout + self.second.stderr)

    def test_discount_row(self):
        _, _, body = self.flora.request("GET", q(q="Бомбастик", pageSize=100))
        match = [p for p in body["items"] if p["name"] == "Пионовидные кустовые Розы Бомбастик 19 шт"]
        self.assertEqual(len(match), 1, [p["name"] for p in body["items"]])
        self.assertEqual(match[0]["price"], 594200)
        self.assertEqual(match[0]["compareAtPrice"], 699000)


if __name__ == "__main__":
    unittest.main()
