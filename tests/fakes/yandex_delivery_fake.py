"""Fake of Yandex Delivery (Express) price check, following
https://yandex.ru/support/delivery-profile/ru/api/express/openapi/IntegrationV2CheckPrice:
POST /b2b/cargo/integration/v2/check-price with Authorization: Bearer <OAuth token>,
Accept-Language, body {"route_points": [{"coordinates": [lon, lat]}, ...], "requirements":
{"taxi_class": ...}, "items"?: [...]}. Answers 200 {"price": "<decimal>", "currency_rules":
{"code", "sign", "template", "text"}, "distance_meters", "eta", "requirements", "zone_id"};
401 without a token, 400 for fewer than two route points."""
import math

from fakeserver import serve


def distance_m(a, b):
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


def check_price(headers, body):
    auth = headers.get("Authorization") or ""
    if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
        return 401, {"code": "unauthorized", "message": "Not authorized request"}
    points = (body or {}).get("route_points") or []
    if len(points) < 2 or any(len(p.get("coordinates") or []) != 2 for p in points):
        return 400, {"code": "validation_error", "message": "route_points: at least two points with coordinates"}
    meters = distance_m(points[0]["coordinates"], points[-1]["coordinates"])
    rub = 300 + 10 * math.ceil(meters / 1000)  # a tariff of the fake: 300 + 10 per started km
    return 200, {"price": "%d.00" % rub,
                 "currency_rules": {"code": "RUB", "sign": "₽", "template": "$VALUE$ $SIGN$$CURRENCY$",
                                    "text": "руб."},
                 "distance_meters": round(meters, 1), "eta": 45,
                 "requirements": (body or {}).get("requirements", {}), "zone_id": "moscow"}


if __name__ == "__main__":
    serve({("POST", "/b2b/cargo/integration/v2/check-price"): check_price})
