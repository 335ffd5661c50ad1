// The bag page: the Deep Zoom viewer over the bag's tiles, the image functions, and every
// agency's marks as an SVG overlay that zooms with the image (toggled per agency).
(function () {
  "use strict";
  var box = document.getElementById("viewer");
  if (!box || typeof OpenSeadragon === "undefined") return;
  var bag = box.dataset.bag;
  var w = Number(box.dataset.width), h = Number(box.dataset.height);
  var fn = box.dataset.fn;
  var marks = document.getElementById("marks");
  var url = function (f) { return "/bag/" + bag + "/dzi/" + f + ".dzi"; };
  var viewer = OpenSeadragon({
    element: box,
    tileSources: url(fn),
    drawer: "canvas",
    showNavigationControl: false,
    showNavigator: true,
    navigatorPosition: "BOTTOM_RIGHT",
    maxZoomPixelRatio: 8,
    visibilityRatio: 0.5,
    gestureSettingsTouch: { pinchRotate: false },
    imageSmoothingEnabled: false
  });
  window.twinspectViewer = viewer;
  var keep = null;
  viewer.addHandler("open", function () {
    if (marks) {
      viewer.addOverlay({ element: marks, location: new OpenSeadragon.Rect(0, 0, 1, h / w) });
      marks.style.display = "block";
    }
    if (keep) { viewer.viewport.fitBounds(keep, true); keep = null; }
  });
  document.querySelectorAll("button[data-fn]").forEach(function (b) {
    b.addEventListener("click", function () {
      var f = b.dataset.fn;
      if (f === fn) return;
      fn = f;
      keep = viewer.viewport.getBounds();
      viewer.open(url(f));
      document.querySelectorAll("button[data-fn]").forEach(function (o) {
        o.classList.toggle("on", o.dataset.fn === f);
      });
      history.replaceState(null, "", "/bag/" + bag + "?fn=" + f);
    });
  });
  document.querySelectorAll("button[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      var z = b.dataset.zoom;
      if (z === "in") viewer.viewport.zoomBy(1.6);
      else if (z === "out") viewer.viewport.zoomBy(1 / 1.6);
      else viewer.viewport.goHome();
    });
  });
  document.querySelectorAll("input[data-marks]").forEach(function (c) {
    c.addEventListener("change", function () {
      var g = marks && marks.querySelector('g[data-agency="' + c.dataset.marks + '"]');
      if (g) g.style.display = c.checked ? "" : "none";
    });
  });
})();
