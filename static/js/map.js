// The chief's map (board, warning page, wall screen) and the hand-entry point picker.
//
// Positions arrive in WGS-84; on a GCJ-02 tile source they are shifted before drawing and a
// picked point is shifted back. With no tile source, offline, or when tiles keep failing, the
// same positions draw on a plain grid with a metric scale, so the map never goes blank.
(function () {
  "use strict";
  if (!window.L) return;

  var TILE_FAILURES_BEFORE_GRID = 4;
  var GRID_STEPS_M = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000];
  var COLOURS = { late: "#a4000f", due: "#b35900", on_time: "#0a6b2d" };

  function identity(lat, lon) { return [lat, lon]; }

  function coordinates(tiles) {
    var gcj = tiles && tiles.crs === "gcj02" && window.FieldappGcj02;
    return {
      show: gcj ? window.FieldappGcj02.toGcj : identity,
      store: gcj ? window.FieldappGcj02.toWgs : identity,
    };
  }

  // Lines every round number of metres (about 80 px apart), against the map's own latitude so
  // the squares are square; drawn per tile, so it pans and zooms like a tile layer.
  var Grid = L.GridLayer.extend({
    initialize: function (refLat, options) {
      this._cosLat = Math.max(Math.cos(refLat * Math.PI / 180), 0.05);
      L.GridLayer.prototype.initialize.call(this, options);
    },
    createTile: function (coords) {
      var size = this.getTileSize();
      var canvas = document.createElement("canvas");
      canvas.width = size.x;
      canvas.height = size.y;
      var ctx = canvas.getContext("2d");
      var map = this._map;
      var metresPerPx = 40075016.686 * this._cosLat / (size.x * Math.pow(2, coords.z));
      var step = GRID_STEPS_M[GRID_STEPS_M.length - 1];
      for (var i = 0; i < GRID_STEPS_M.length; i++) {
        if (GRID_STEPS_M[i] / metresPerPx >= 80) { step = GRID_STEPS_M[i]; break; }
      }
      var origin = L.point(coords.x * size.x, coords.y * size.y);
      var nw = map.unproject(origin, coords.z);
      var se = map.unproject(origin.add(size), coords.z);
      var latStep = step / 111320;
      var lonStep = step / (111320 * this._cosLat);
      ctx.strokeStyle = "#b9b9b0";
      ctx.lineWidth = 1;
      ctx.beginPath();
      // Each line belongs to the one tile that holds it (x in [0, size)), never drawn twice.
      for (var lon = Math.ceil(nw.lng / lonStep) * lonStep; lon < se.lng; lon += lonStep) {
        var x = Math.round(map.project([nw.lat, lon], coords.z).x - origin.x) + 0.5;
        ctx.moveTo(x, 0);
        ctx.lineTo(x, size.y);
      }
      for (var lat = Math.floor(nw.lat / latStep) * latStep; lat > se.lat; lat -= latStep) {
        var y = Math.round(map.project([lat, nw.lng], coords.z).y - origin.y) + 0.5;
        ctx.moveTo(0, y);
        ctx.lineTo(size.x, y);
      }
      ctx.stroke();
      return canvas;
    },
  });

  function note(wrap, role, show) {
    var el = wrap && wrap.querySelector('[data-role="' + role + '"]');
    if (el) el.hidden = !show;
  }

  // A Leaflet map on `el` with its tiles, or the grid when there are none or they fail.
  function baseMap(el, options) {
    var settings = JSON.parse(el.getAttribute("data-map") || "{}");
    var tiles = settings.tiles;
    var wrap = el.closest(".map-wrap");
    var center = (el.getAttribute("data-center") || "").split(",").map(Number);
    if (center.length !== 2 || isNaN(center[0]) || isNaN(center[1])) center = [30, 114];
    var map = L.map(el, {
      zoomControl: options.controls,
      attributionControl: true,
      keyboard: options.controls,
      maxZoom: 19,
    });
    map.attributionControl.setPrefix("Leaflet");
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    var coords = coordinates(tiles);
    var shown = coords.show(center[0], center[1]);
    map.setView(shown, 13);
    var grid = null;
    var layers = [];

    function useGrid(reason) {
      layers.forEach(function (layer) { map.removeLayer(layer); });
      layers = [];
      if (!grid) grid = new Grid(center[0], { zIndex: 0 }).addTo(map);
      el.classList.add("map-grid");
      el.setAttribute("data-base", "grid");
      note(wrap, "grid-" + reason, true);
    }

    function useTiles() {
      var failures = 0;
      var loaded = 0;
      var base = L.tileLayer(tiles.url, {
        subdomains: tiles.subdomains || "abc",
        attribution: tiles.attribution,
        maxZoom: tiles.maxZoom || 18,
      });
      base.on("tileload", function () {
        loaded += 1;
        failures = 0;
        el.setAttribute("data-base", "tiles");
      });
      base.on("tileerror", function () {
        failures += 1;
        // Tiles that never loaded, or that stopped loading: the network or the server is gone.
        if (failures >= TILE_FAILURES_BEFORE_GRID && (loaded === 0 || failures >= 2 * TILE_FAILURES_BEFORE_GRID)) {
          useGrid("failed");
        }
      });
      layers.push(base.addTo(map));
      if (tiles.overlay) {
        layers.push(L.tileLayer(tiles.overlay, { subdomains: tiles.subdomains || "abc", maxZoom: tiles.maxZoom || 18 }).addTo(map));
      }
    }

    if (!tiles) useGrid("none");
    else if (navigator.onLine === false) useGrid("failed");
    else useTiles();
    return { map: map, coords: coords, wrap: wrap, center: shown };
  }

  function popup(item) {
    var box = document.createElement("div");
    box.className = "map-popup";
    var title = document.createElement("strong");
    title.textContent = item.title;
    box.appendChild(title);
    (item.lines || []).forEach(function (line) {
      var p = document.createElement("p");
      p.textContent = line;
      box.appendChild(p);
    });
    if (item.url) {
      var a = document.createElement("a");
      a.href = item.url;
      a.textContent = item.link || item.url;
      box.appendChild(a);
    }
    return box;
  }

  // The live map: stations, on-duty officers, open warnings from the JSON endpoint.
  function liveMap(el) {
    var mode = el.getAttribute("data-mode") || "board";
    var base = baseMap(el, { controls: mode !== "wall" });
    var map = base.map;
    var layer = L.featureGroup().addTo(map);
    var fitted = false;
    var busy = false;
    var again = false;
    var draws = 0;

    function place(item) { return base.coords.show(item.lat, item.lon); }

    function draw(data) {
      var open = null;
      // A refresh redraws every marker: the popup the chief is reading stays open.
      var reading = null;
      var reopen = null;
      layer.eachLayer(function (l) { if (l.isPopupOpen && l.isPopupOpen()) reading = l.fieldappKey; });
      function keyed(marker, key) {
        marker.fieldappKey = key;
        if (reading && key === reading) reopen = marker;
        return marker;
      }
      layer.clearLayers();
      (data.stations || []).forEach(function (s) {
        var icon = L.divIcon({ className: "map-station", html: "", iconSize: [22, 22] });
        keyed(L.marker(place(s), { icon: icon, title: s.title, keyboard: false }), "s" + s.id)
          .bindPopup(popup(s)).addTo(layer);
      });
      (data.officers || []).forEach(function (o) {
        keyed(L.circleMarker(place(o), {
          radius: 8,
          weight: 3,
          color: o.fresh ? "#0b3d91" : "#555",
          dashArray: o.fresh ? null : "3 3",
          fillColor: o.fresh ? "#4d7fd6" : "#fff",
          fillOpacity: 1,
          className: "map-officer " + (o.fresh ? "fresh" : "stale"),
        }), "o" + o.id).bindTooltip(o.title).bindPopup(popup(o)).addTo(layer);
      });
      (data.warnings || []).forEach(function (w) {
        var marker = keyed(L.circleMarker(place(w), {
          radius: w.focus ? 14 : 11,
          weight: w.unassigned || w.focus ? 5 : 2,
          color: w.unassigned || w.focus ? "#111" : "#fff",
          fillColor: COLOURS[w.lateness] || "#555",
          fillOpacity: 0.95,
          className: "map-warning " + w.lateness + (w.unassigned ? " unassigned" : "") + " w" + w.id,
        }), "w" + w.id).bindTooltip(w.title).bindPopup(popup(w)).addTo(layer);
        if (w.focus) open = marker;
      });
      var notes = base.wrap && base.wrap.querySelector('[data-role="notes"]');
      if (notes) {
        notes.textContent = "";
        (data.notes || []).forEach(function (text) {
          var li = document.createElement("li");
          li.textContent = text;
          notes.appendChild(li);
        });
      }
      if (open && !fitted) {
        // Without animation: a popup opened during the zoom animation is not panned into view
        // (its top, the warning's title, was cut off by the map's edge).
        map.setView(open.getLatLng(), 14, { animate: false });
        open.openPopup();
      } else if ((!fitted || mode === "wall") && layer.getLayers().length) {
        // A wall screen refits on every refresh: without animation, so it never shows a blur.
        map.fitBounds(layer.getBounds(), { padding: [24, 24], maxZoom: 15, animate: mode !== "wall" });
      }
      if (reopen && fitted) reopen.openPopup();
      fitted = true;
      el.setAttribute("data-loaded", String((data.warnings || []).length));
      el.setAttribute("data-draws", String(++draws));
    }

    function refresh() {
      // One request at a time; a refresh asked for meanwhile runs once it is done.
      if (busy) { again = true; return; }
      busy = true;
      fetch(el.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (!r.ok || (r.headers.get("Content-Type") || "").indexOf("json") === -1) throw new Error(r.status);
          return r.json();
        })
        .then(draw)
        .catch(function () { /* keep what is drawn; the next refresh tries again */ })
        .then(function () {
          busy = false;
          if (again) { again = false; refresh(); }
        });
    }

    refresh();
    // The board's list refreshes on every live event and every 30 s: the map follows it.
    var live = document.querySelector("[data-live]");
    if (live) {
      live.addEventListener("htmx:afterSettle", function (event) {
        if (event.target === live) refresh();
      });
    }
    window.addEventListener("online", refresh);
    el.fieldappMap = { map: map, refresh: refresh };
  }

  // Hand entry: a tap on the map fills latitude and longitude (WGS-84); typing moves the pin.
  function pickerMap(el) {
    var base = baseMap(el, { controls: true });
    var map = base.map;
    var lat = document.getElementById(el.getAttribute("data-lat-input"));
    var lon = document.getElementById(el.getAttribute("data-lon-input"));
    var station = document.getElementById(el.getAttribute("data-station-input"));
    var pin = null;
    // The station as a landmark, so a point can be placed on the grid too.
    var stationIcon = L.divIcon({ className: "map-station", html: "", iconSize: [22, 22] });
    var landmark = L.marker(base.center, { icon: stationIcon, keyboard: false, interactive: false }).addTo(map);

    function show(latValue, lonValue) {
      var at = base.coords.show(latValue, lonValue);
      if (pin) pin.setLatLng(at);
      else pin = L.circleMarker(at, { radius: 11, weight: 4, color: "#111", fillColor: "#a4000f", fillOpacity: 0.9, className: "map-pin" }).addTo(map);
      el.setAttribute("data-picked", latValue.toFixed(6) + "," + lonValue.toFixed(6));
    }

    function typed() {
      var a = parseFloat(lat.value);
      var b = parseFloat(lon.value);
      if (isFinite(a) && isFinite(b) && Math.abs(a) <= 90 && Math.abs(b) <= 180) {
        show(a, b);
        if (!map.getBounds().contains(pin.getLatLng())) map.panTo(pin.getLatLng());
      }
    }

    map.on("click", function (event) {
      el.fieldappMap.clicked = [event.latlng.lat, event.latlng.lng];
      var stored = base.coords.store(event.latlng.lat, event.latlng.lng);
      lat.value = stored[0].toFixed(6);
      lon.value = stored[1].toFixed(6);
      show(stored[0], stored[1]);
    });
    lat.addEventListener("change", typed);
    lon.addEventListener("change", typed);
    if (station) {
      station.addEventListener("change", function () {
        var option = station.options[station.selectedIndex];
        var c = (option && option.getAttribute("data-center") || "").split(",").map(Number);
        if (c.length !== 2 || isNaN(c[0]) || isNaN(c[1])) return;
        landmark.setLatLng(base.coords.show(c[0], c[1]));
        if (!pin) map.setView(landmark.getLatLng(), 13);
      });
    }
    typed();
    el.fieldappMap = { map: map };
  }

  function start() {
    document.querySelectorAll(".map[data-url]").forEach(liveMap);
    document.querySelectorAll(".map[data-lat-input]").forEach(pickerMap);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
