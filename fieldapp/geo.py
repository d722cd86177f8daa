"""Distances on the earth's surface."""

import math

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def degrees_box(lat: float, radius_m: float) -> tuple[float, float]:
    """Half-height and half-width in degrees of a box holding a circle of `radius_m`."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    coslat = max(0.01, math.cos(math.radians(lat)))
    return dlat, min(180.0, dlat / coslat)
