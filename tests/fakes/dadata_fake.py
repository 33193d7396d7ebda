"""Fake of DaData's address suggestions, following https://dadata.ru/api/suggest/address/:
POST /suggestions/api/4_1/rs/suggest/address with Content-Type: application/json,
Accept: application/json, Authorization: Token <API key>, body {"query": "...", "count": N}.
Answers {"suggestions": [{"value", "unrestricted_value", "data": {..., "geo_lat", "geo_lon",
"qc_geo"}}]}; geo_lat/geo_lon are decimal strings, or null when DaData has no coordinates.
401 without a token, 400 without a query (as documented)."""
from fakeserver import serve

KNOWN = {
    "москва, красная площадь, 1": ("г Москва, Красная пл, д 1", "55.753930", "37.620795", "0"),
    "москва, ул фрунзенская набережная, 1": ("г Москва, Фрунзенская наб, д 1", "55.736300", "37.596800", "0"),
    "москва, деревня без координат": ("г Москва, д Безымянная", None, None, "5"),
}


def suggest(headers, body):
    auth = headers.get("Authorization") or ""
    if not auth.startswith("Token ") or len(auth) <= len("Token "):
        return 401, {"family": "CLIENT_ERROR", "reason": "Forbidden", "message": "Zero balance or missing API key"}
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return 400, {"family": "CLIENT_ERROR", "reason": "Bad Request", "message": "query is required"}
    count = body.get("count", 10)
    found = KNOWN.get(body["query"].strip().lower())
    suggestions = []
    if found:
        value, lat, lon, qc_geo = found
        suggestions.append({"value": value, "unrestricted_value": "101000, " + value,
                            "data": {"postal_code": "101000", "country": "Россия", "city": "Москва",
                                     "geo_lat": lat, "geo_lon": lon, "qc_geo": qc_geo}})
    return 200, {"suggestions": suggestions[:count]}


if __name__ == "__main__":
    serve({("POST", "/suggestions/api/4_1/rs/suggest/address"): suggest})
