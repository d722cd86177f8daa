"""Where the map's tiles come from: a preset (Tianditu, Amap, OpenStreetMap) or a URL template.

Settings (environment, see config.py):
- FIELDAPP_MAP_TILES: "tianditu", "amap", "osm", or empty for no tiles (a plain scaled grid);
- FIELDAPP_MAP_TILE_URL: a Leaflet URL template ({z}/{x}/{y}, optional {s}) instead of a preset,
  with FIELDAPP_MAP_ATTRIBUTION, FIELDAPP_MAP_CRS (wgs84 | gcj02), FIELDAPP_MAP_SUBDOMAINS;
- FIELDAPP_MAP_KEY: the key a preset needs (Tianditu's browser key, "tk").

Off by default: every tile request tells the tile server where the chief is looking, so a county
chooses its provider. Chinese commercial maps (Amap) draw in GCJ-02: the browser shifts our
WGS-84 positions onto them. Tianditu draws in CGCS2000, which is WGS-84 to within centimetres.
"""

import logging
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

CRS_CHOICES = ("wgs84", "gcj02")


@dataclass(frozen=True)
class TileSource:
    url: str
    attribution: str
    crs: str = "wgs84"
    subdomains: str = "abc"
    overlay_url: str = ""  # a second layer drawn on top (Tianditu's place names)
    max_zoom: int = 18

    def as_dict(self) -> dict:
        """What the page's map script needs (also the CSP's image origins)."""
        return {
            "url": self.url,
            "overlay": self.overlay_url,
            "attribution": self.attribution,
            "crs": self.crs,
            "subdomains": self.subdomains,
            "maxZoom": self.max_zoom,
        }


_TIANDITU = (
    "https://t{s}.tianditu.gov.cn/%s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=%s&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
    "&TILECOL={x}&tk=%s"
)


def _preset(name: str, key: str) -> TileSource | None:
    if name == "osm":
        return TileSource(
            url="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            attribution="© OpenStreetMap contributors",
            subdomains="",
            max_zoom=19,
        )
    if name == "amap":
        return TileSource(
            url="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
            "&x={x}&y={y}&z={z}",
            attribution="© 高德地图 AutoNavi",
            crs="gcj02",
            subdomains="1234",
        )
    if name == "tianditu":
        if not key:
            log.warning("FIELDAPP_MAP_TILES=tianditu needs FIELDAPP_MAP_KEY; drawing a grid")
            return None
        return TileSource(
            url=_TIANDITU % ("vec", "vec", key),
            overlay_url=_TIANDITU % ("cva", "cva", key),
            attribution="© 天地图 Tianditu",
            subdomains="01234567",
        )
    log.warning("unknown FIELDAPP_MAP_TILES=%r; drawing a grid", name)
    return None


def _custom(url: str, attribution: str, crs: str, subdomains: str) -> TileSource | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        log.warning("FIELDAPP_MAP_TILE_URL must be an http(s) URL; drawing a grid")
        return None
    if not all(p in url for p in ("{z}", "{x}", "{y}")):
        log.warning("FIELDAPP_MAP_TILE_URL needs {z}, {x} and {y}; drawing a grid")
        return None
    if "{s}" in url and not subdomains:
        log.warning("FIELDAPP_MAP_TILE_URL uses {s}: set FIELDAPP_MAP_SUBDOMAINS; drawing a grid")
        return None
    if crs not in CRS_CHOICES:
        log.warning("FIELDAPP_MAP_CRS must be wgs84 or gcj02; drawing a grid")
        return None
    return TileSource(url=url, attribution=attribution, crs=crs, subdomains=subdomains)


@lru_cache(maxsize=8)
def _source(preset: str, key: str, url: str, attribution: str, crs: str, subdomains: str):
    if url:
        return _custom(url, attribution, crs or "wgs84", subdomains)
    if preset:
        return _preset(preset, key)
    return None


def source(config) -> TileSource | None:
    """The configured tile source, or None: the map draws positions on a plain grid."""
    return _source(
        config.get("MAP_TILES", "").strip().lower(),
        config.get("MAP_KEY", "").strip(),
        config.get("MAP_TILE_URL", "").strip(),
        config.get("MAP_ATTRIBUTION", "").strip(),
        config.get("MAP_CRS", "").strip().lower(),
        config.get("MAP_SUBDOMAINS", "").strip(),
    )


def origins(config) -> tuple[str, ...]:
    """Every scheme://host the tiles load from, for the Content-Security-Policy's img-src."""
    tiles = source(config)
    if tiles is None:
        return ()
    found: list[str] = []
    for template in (tiles.url, tiles.overlay_url):
        if not template:
            continue
        for sub in tiles.subdomains if "{s}" in template else [""]:
            parts = urlsplit(template.replace("{s}", sub))
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in found:
                found.append(origin)
    return tuple(found)
