// WGS-84 <-> GCJ-02, the shifted coordinates that Chinese commercial maps (Amap and others)
// draw in. Positions are stored in WGS-84; on a GCJ-02 tile source the map shifts each one
// before drawing it, and shifts a picked point back before it fills a form.
// The published forward transform (Krasovsky ellipsoid); the inverse by fixed-point iteration,
// exact to well under a centimetre. Outside China both are the identity.
(function (root) {
  "use strict";
  var A = 6378245.0;
  var EE = 0.00669342162296594323;
  var PI = Math.PI;

  function outOfChina(lat, lon) {
    return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
  }

  function shiftLat(x, y) {
    var r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    r += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    return r;
  }

  function shiftLon(x, y) {
    var r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    r += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    return r;
  }

  function delta(lat, lon) {
    var dLat = shiftLat(lon - 105.0, lat - 35.0);
    var dLon = shiftLon(lon - 105.0, lat - 35.0);
    var radLat = lat / 180.0 * PI;
    var magic = Math.sin(radLat);
    magic = 1 - EE * magic * magic;
    var sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
    dLon = (dLon * 180.0) / (A / sqrtMagic * Math.cos(radLat) * PI);
    return [dLat, dLon];
  }

  // [lat, lon] in WGS-84 -> [lat, lon] in GCJ-02.
  function toGcj(lat, lon) {
    if (outOfChina(lat, lon)) return [lat, lon];
    var d = delta(lat, lon);
    return [lat + d[0], lon + d[1]];
  }

  // [lat, lon] in GCJ-02 -> [lat, lon] in WGS-84: find w with toGcj(w) = g.
  function toWgs(lat, lon) {
    if (outOfChina(lat, lon)) return [lat, lon];
    var w = [lat, lon];
    for (var i = 0; i < 30; i++) {
      var g = toGcj(w[0], w[1]);
      var eLat = lat - g[0];
      var eLon = lon - g[1];
      w = [w[0] + eLat, w[1] + eLon];
      if (Math.abs(eLat) < 1e-10 && Math.abs(eLon) < 1e-10) break;
    }
    return w;
  }

  var api = { toGcj: toGcj, toWgs: toWgs, outOfChina: outOfChina };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.FieldappGcj02 = api;
})(this);
