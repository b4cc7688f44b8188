/* advisor's HTML report: draws the timeline and the flame graph from the embedded data,
   and makes the tables sortable. Plain DOM and SVG, nothing loaded from anywhere. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("advisor-data").textContent);
  var tooltip = document.getElementById("tooltip");
  // the namespace of SVG elements, taken from an <svg> the HTML parser already made
  var NS = document.getElementById("timeline-svg").namespaceURI;
  var measure = document.createElement("canvas").getContext("2d");
  // text is measured in the fonts the page really uses, so fitted labels never overlap
  var SANS = getComputedStyle(document.body).fontFamily;
  var MONO = getComputedStyle(document.querySelector("code") || document.body).fontFamily;

  // ---------------------------------------------------------------- helpers

  function seconds(value) {
    if (value >= 1) { return value.toFixed(2) + " s"; }
    if (value >= 0.001) { return (value * 1000).toFixed(1) + " ms"; }
    if (value > 0) { return (value * 1e6).toFixed(0) + " µs"; }
    return "0";
  }

  function share(part, whole) {
    return whole > 0 ? (100 * part / whole).toFixed(0) + "%" : "-";
  }

  function svg(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  // the longest prefix of `text` (with an ellipsis) that fits in `width` pixels
  function fit(text, width, font) {
    measure.font = font;
    if (measure.measureText(text).width <= width) { return text; }
    var low = 0, high = text.length;
    while (low < high) {
      var mid = Math.ceil((low + high) / 2);
      if (measure.measureText(text.slice(0, mid) + "…").width <= width) { low = mid; } else { high = mid - 1; }
    }
    return low > 0 ? text.slice(0, low) + "…" : "";
  }

  function showTip(event, title, lines) {
    clear(tooltip);
    var head = document.createElement("b");
    head.textContent = title;
    tooltip.appendChild(head);
    tooltip.appendChild(document.createTextNode("\n" + lines.join("\n")));
    tooltip.hidden = false;
    var x = event.clientX + 14, y = event.clientY + 14;
    var box = tooltip.getBoundingClientRect();
    if (x + box.width > window.innerWidth - 8) { x = event.clientX - box.width - 14; }
    if (y + box.height > window.innerHeight - 8) { y = event.clientY - box.height - 14; }
    tooltip.style.left = Math.max(4, x) + "px";
    tooltip.style.top = Math.max(4, y) + "px";
  }

  function hideTip() { tooltip.hidden = true; }

  function niceStep(raw) {
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= raw) { return steps[i] * power; }
    }
    return 10 * power;
  }

  function tickLabel(t, step) {
    var unit = step >= 1 ? [1, " s"] : step >= 0.001 ? [1000, " ms"] : [1e6, " µs"];
    var scaled = t * unit[0], stepScaled = step * unit[0];
    var decimals = Math.max(0, -Math.floor(Math.log10(stepScaled) + 1e-9));
    return scaled.toFixed(decimals) + unit[1];
  }

  // ---------------------------------------------------------------- timeline

  var LABEL_W = 240, LANE_H = 20, GAP = 6, AXIS_H = 28, PAD_R = 16;
  var PARTS = ["compute", "blocking", "io", "waiting", "scheduling"];
  var units = data.units;
  var timed = units.some(function (u) { return u.start !== null && u.end !== null; });
  var runEnd = Math.max(data.wall, 1e-6);
  units.forEach(function (u) {
    if (u.start !== null && u.end !== null) {
      u.t0 = u.start; u.t1 = Math.max(u.end, u.start);
    } else {  // a report without start and end times: each bar starts at 0
      u.t0 = 0; u.t1 = Math.min(u.wall, runEnd);
    }
    runEnd = Math.max(runEnd, u.t1);
    // blocking time is part of io + waiting: show it as its own segment, taken out of them
    var blockingIo = Math.min(u.io, u.blocking * u.blocking_io_share);
    var blockingWaiting = Math.min(u.waiting, u.blocking - blockingIo);
    u.parts = {
      compute: u.compute, blocking: blockingIo + blockingWaiting, io: u.io - blockingIo,
      waiting: u.waiting - blockingWaiting, scheduling: u.scheduling
    };
  });
  var view = { t0: 0, t1: runEnd };
  var chart = document.getElementById("timeline-chart");
  var timelineSvg = document.getElementById("timeline-svg");
  var windowLabel = document.getElementById("zoom-window");
  if (!timed && units.length) {
    document.getElementById("timeline-note").textContent =
      "This report has no start and end times per unit (it was made by an older advisor): each bar starts at 0 " +
      "and is as long as the unit's wall time; its colours show how that time splits, in proportion.";
  }

  function plotWidth() { return Math.max(200, chart.clientWidth - LABEL_W - PAD_R); }
  function xOf(t) { return LABEL_W + (t - view.t0) / (view.t1 - view.t0) * plotWidth(); }
  function tOf(x) { return view.t0 + (x - LABEL_W) / plotWidth() * (view.t1 - view.t0); }

  // one listener for every lane: which unit and part is under the pointer
  function laneUnder(event) {
    var lane = event.target.closest ? event.target.closest("g.lane") : null;
    return lane ? units[+lane.getAttribute("data-index")] : null;
  }

  timelineSvg.addEventListener("mousemove", function (event) {
    var unit = brush ? null : laneUnder(event);
    var target = event.target;
    if (unit && (target.classList.contains("seg") || target.classList.contains("lane-label"))) {
      laneTip(unit, target.getAttribute("data-part"))(event);
    } else {
      hideTip();
    }
  });
  timelineSvg.addEventListener("mouseleave", hideTip);
  timelineSvg.addEventListener("click", function (event) {
    var unit = laneUnder(event);
    if (unit && event.target.classList.contains("lane-label")) { showUnitFlame(unit.id); }
  });

  function laneTip(unit, part) {
    return function (event) {
      var lines = [
        unit.kind + (unit.count > 1 ? " · " + unit.count + " folded" : "") + " · " + unit.target,
        "from " + seconds(unit.t0) + " to " + seconds(unit.t1) + " · wall " + seconds(unit.wall)
      ];
      PARTS.forEach(function (name) {
        if (unit.parts[name] > 0) {
          lines.push((name === part ? "▸ " : "   ") + name + " " + seconds(unit.parts[name]) + " (" +
                     share(unit.parts[name], unit.wall) + ")");
        }
      });
      showTip(event, unit.name, lines);
    };
  }

  function drawTimeline() {
    clear(timelineSvg);
    var width = chart.clientWidth;
    var height = AXIS_H + units.length * (LANE_H + GAP) + GAP;
    timelineSvg.setAttribute("width", width);
    timelineSvg.setAttribute("height", height);
    timelineSvg.setAttribute("viewBox", "0 0 " + width + " " + height);
    var defs = svg("defs", {}, timelineSvg);
    var clip = svg("clipPath", { id: "timeline-clip" }, defs);
    svg("rect", { x: LABEL_W, y: 0, width: plotWidth(), height: height }, clip);

    var axis = svg("g", { "class": "axis" }, timelineSvg);
    var span = view.t1 - view.t0;
    var step = niceStep(span / Math.max(2, plotWidth() / 110));
    for (var t = Math.ceil(view.t0 / step) * step; t <= view.t1 + step * 1e-6; t += step) {
      var x = xOf(t);
      svg("line", { x1: x, x2: x, y1: AXIS_H - 6, y2: height }, axis);
      var label = svg("text", { x: x, y: AXIS_H - 11, "text-anchor": "middle" }, axis);
      label.textContent = tickLabel(t, step);
    }

    var lanes = svg("g", { "class": "lanes" }, timelineSvg);
    units.forEach(function (unit, index) {
      var y = AXIS_H + GAP / 2 + index * (LANE_H + GAP);
      var lane = svg("g", { "class": "lane", "data-unit": unit.id, "data-index": index }, lanes);
      svg("rect", { "class": "lane-bg", x: LABEL_W, y: y, width: plotWidth(), height: LANE_H }, lane);
      var kind = unit.kind + (unit.count > 1 ? " ×" + unit.count : "");
      if (unit.label === undefined) {  // fitted once: zooming does not change the label column
        measure.font = "10.5px " + SANS;
        unit.label = fit(unit.name, LABEL_W - 26 - measure.measureText(kind).width, "12px " + SANS);
      }
      var name = svg("text", { "class": "lane-label", x: 8, y: y + LANE_H / 2 + 4 }, lane);
      name.textContent = unit.label;
      var kindText = svg("text", { "class": "lane-kind", x: LABEL_W - 10, y: y + LANE_H / 2 + 4,
                                   "text-anchor": "end" }, lane);
      kindText.textContent = kind;

      var bars = svg("g", { "clip-path": "url(#timeline-clip)" }, lane);
      if (unit.segments) {
        drawSteps(unit, bars, y);
        return;
      }
      var x0 = xOf(unit.t0), x1 = Math.max(xOf(unit.t1), x0 + 2);  // a short unit stays visible
      var total = PARTS.reduce(function (sum, part) { return sum + unit.parts[part]; }, 0);
      var cursor = x0;
      PARTS.forEach(function (part) {
        if (!(unit.parts[part] > 0) || total <= 0) { return; }
        var w = (x1 - x0) * unit.parts[part] / total;
        svg("rect", { "class": "seg " + part, "data-part": part, x: cursor, y: y + 2,
                      width: Math.max(w, 0.5), height: LANE_H - 4 }, bars);
        cursor += w;
      });
    });
    windowLabel.textContent = seconds(view.t0) + " – " + seconds(view.t1);
  }

  // a unit with recorded steps: each step and each wait where and when it happened
  // (segments in view only; neighbours of one part that fall in one pixel are drawn as one)
  function drawSteps(unit, bars, y) {
    var open = null;
    function flush() {
      if (open) {
        svg("rect", { "class": "seg " + open.part + " step", "data-part": open.part, x: open.x0, y: y + 2,
                      width: Math.max(open.x1 - open.x0, 0.5), height: LANE_H - 4 }, bars);
        open = null;
      }
    }
    unit.segments.forEach(function (segment) {
      if (segment[1] < view.t0 || segment[0] > view.t1) { return; }
      var x0 = xOf(segment[0]), x1 = xOf(segment[1]), part = segment[2];
      if (open && open.part === part && x0 - open.x1 < 1) {
        open.x1 = Math.max(open.x1, x1);
        return;
      }
      flush();
      open = { x0: x0, x1: x1, part: part };
    });
    flush();
  }

  function zoomTo(t0, t1) {
    var minSpan = runEnd / 1e4;
    if (t1 - t0 < minSpan) { var mid = (t0 + t1) / 2; t0 = mid - minSpan / 2; t1 = mid + minSpan / 2; }
    var width = Math.min(t1 - t0, runEnd);
    t0 = Math.max(0, Math.min(t0, runEnd - width));
    view.t0 = t0; view.t1 = t0 + width;
    drawTimeline();
  }

  function zoomBy(factor, at) {
    var center = at === undefined ? (view.t0 + view.t1) / 2 : at;
    zoomTo(center - (center - view.t0) * factor, center + (view.t1 - center) * factor);
  }

  document.getElementById("zoom-in").addEventListener("click", function () { zoomBy(0.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoomBy(2); });
  document.getElementById("zoom-reset").addEventListener("click", function () { zoomTo(0, runEnd); });
  timelineSvg.addEventListener("wheel", function (event) {
    var box = timelineSvg.getBoundingClientRect(), x = event.clientX - box.left;
    if (x < LABEL_W) { return; }
    if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      zoomBy(event.deltaY > 0 ? 1.25 : 0.8, tOf(x));
    } else if (event.shiftKey || Math.abs(event.deltaX) > Math.abs(event.deltaY)) {
      event.preventDefault();
      var delta = (event.deltaX || event.deltaY) / plotWidth() * (view.t1 - view.t0);
      zoomTo(view.t0 + delta, view.t1 + delta);
    }
  }, { passive: false });

  // drag across the plot: zoom into the range
  var brush = null;
  timelineSvg.addEventListener("mousedown", function (event) {
    var box = timelineSvg.getBoundingClientRect(), x = event.clientX - box.left;
    if (x < LABEL_W || event.button !== 0) { return; }
    brush = { x0: x, rect: svg("rect", { "class": "brush", x: x, y: 0, width: 0, height: timelineSvg.getAttribute("height") },
                                timelineSvg) };
    event.preventDefault();
  });
  window.addEventListener("mousemove", function (event) {
    if (!brush) { return; }
    var box = timelineSvg.getBoundingClientRect();
    var x = Math.max(LABEL_W, Math.min(event.clientX - box.left, LABEL_W + plotWidth()));
    brush.rect.setAttribute("x", Math.min(x, brush.x0));
    brush.rect.setAttribute("width", Math.abs(x - brush.x0));
    brush.x1 = x;
  });
  window.addEventListener("mouseup", function () {
    if (!brush) { return; }
    var done = brush;
    brush = null;
    if (done.x1 !== undefined && Math.abs(done.x1 - done.x0) > 4) {
      zoomTo(tOf(Math.min(done.x0, done.x1)), tOf(Math.max(done.x0, done.x1)));
    } else if (done.rect.parentNode) {
      done.rect.parentNode.removeChild(done.rect);
    }
  });

  // ---------------------------------------------------------------- flame graph

  var ROW_H = 20, CHAR_FONT = "11px " + MONO, MIN_FRAME_PX = 0.8;
  var flameChart = document.getElementById("flame-chart");
  var flameSvg = document.getElementById("flame-svg");
  var unitSelect = document.getElementById("flame-unit");
  var unitNames = {};
  units.forEach(function (u) { unitNames[u.id] = u.name; });
  var flame = { root: null, focus: null };
  var search = document.getElementById("flame-search");
  var matchesLabel = document.getElementById("flame-matches");

  function newNode(frame, parent) {
    return { frame: frame, parent: parent, children: new Map(), total: 0, self: 0,
             parts: { compute: 0, io: 0, waiting: 0, scheduling: 0 } };
  }

  function buildFlame(unitId) {
    var root = newNode(-1, null);
    data.stacks.forEach(function (stack) {
      if (unitId && stack[0] !== unitId) { return; }
      var weight = stack[2], on = Math.min(stack[3], weight), state = stack[4];
      var offPart = state === "running" ? "compute" : (state in root.parts ? state : "waiting");
      var node = root;
      var visit = function (n) {
        n.total += weight;
        n.parts.compute += on;
        n.parts[offPart] += weight - on;
      };
      visit(node);
      stack[1].forEach(function (frame) {
        var child = node.children.get(frame);
        if (!child) { child = newNode(frame, node); node.children.set(frame, child); }
        node = child;
        visit(node);
      });
      node.self += weight;
    });
    flame.root = flame.focus = root;
  }

  function frameName(node) {
    if (node.frame < 0) {
      return unitSelect.value ? unitNames[unitSelect.value] || unitSelect.value : "all units";
    }
    return data.frames[node.frame][0];
  }

  function dominant(node) {
    var best = "compute";
    Object.keys(node.parts).forEach(function (part) { if (node.parts[part] > node.parts[best]) { best = part; } });
    return best;
  }

  // how many rows below `node` hold a frame wide enough to draw (at `scale` pixels a second)
  function depthBelow(node, scale) {
    var deepest = 0;
    node.children.forEach(function (child) {
      if (child.total * scale >= MIN_FRAME_PX) { deepest = Math.max(deepest, 1 + depthBelow(child, scale)); }
    });
    return deepest;
  }

  function frameTip(node) {
    return function (event) {
      var lines = [];
      if (node.frame >= 0) {
        var frame = data.frames[node.frame];
        lines.push(frame[1] + ":" + frame[2]);
      }
      lines.push("total " + seconds(node.total) + " (" + share(node.total, flame.root.total) + " of all shown)");
      lines.push("self " + seconds(node.self));
      Object.keys(node.parts).forEach(function (part) {
        if (node.parts[part] > 0) {
          lines.push("   " + (part === "compute" ? "on CPU" : part) + " " + seconds(node.parts[part]));
        }
      });
      lines.push(node === flame.focus ? "click an ancestor above to zoom out" : "click to zoom in");
      showTip(event, frameName(node), lines);
    };
  }

  function matches(node) {
    if (!search.value || node.frame < 0) { return false; }
    var frame = data.frames[node.frame], needle = search.value.toLowerCase();
    return frame[0].toLowerCase().indexOf(needle) >= 0 || frame[1].toLowerCase().indexOf(needle) >= 0;
  }

  // the time under the matching frames, each sample counted once (not again in a matching callee)
  function matchedTime(node) {
    if (matches(node)) { return node.total; }
    var sum = 0;
    node.children.forEach(function (child) { sum += matchedTime(child); });
    return sum;
  }

  function drawFrame(node, x, width, depth, group, dim) {
    var mark = search.value ? (matches(node) ? " match" : " faded") : "";
    var g = svg("g", { "class": "frame " + dominant(node) + (dim ? " dim" : "") + mark, "data-frame": node.frame },
                group);
    svg("rect", { x: x, y: depth * ROW_H, width: width, height: ROW_H - 1, rx: 2 }, g);
    if (width > 24) {
      var label = svg("text", { x: x + 4, y: depth * ROW_H + 14 }, g);
      label.textContent = fit(frameName(node), width - 8, CHAR_FONT);
    }
    g.addEventListener("mousemove", frameTip(node));
    g.addEventListener("mouseleave", hideTip);
    g.addEventListener("click", function () { flame.focus = node; hideTip(); drawFlame(); });
  }

  function drawFlame() {
    clear(flameSvg);
    var width = flameChart.clientWidth;
    var root = flame.root, focus = flame.focus;
    if (!root || root.total <= 0) {
      flameSvg.setAttribute("width", width);
      flameSvg.setAttribute("height", 40);
      var empty = svg("text", { x: 16, y: 25, "class": "lane-kind" }, flameSvg);
      empty.textContent = "No sampled stacks" + (unitSelect.value ? " for this unit." : ".");
      return;
    }
    var ancestors = [];
    for (var up = focus.parent; up; up = up.parent) { ancestors.unshift(up); }
    var scale = width / focus.total;
    var rows = ancestors.length + 1 + depthBelow(focus, scale);
    var height = rows * ROW_H + 2;
    flameSvg.setAttribute("width", width);
    flameSvg.setAttribute("height", height);
    flameSvg.setAttribute("viewBox", "0 0 " + width + " " + height);
    var group = svg("g", {}, flameSvg);
    ancestors.forEach(function (node, depth) { drawFrame(node, 0, width, depth, group, true); });
    var walk = function (node, x, depth) {
      var w = node.total * scale;
      if (w < MIN_FRAME_PX) { return; }
      drawFrame(node, x, w, depth, group, false);
      var childX = x;
      Array.from(node.children.values())
        .sort(function (a, b) { return b.total - a.total; })
        .forEach(function (child) { walk(child, childX, depth + 1); childX += child.total * scale; });
    };
    walk(focus, 0, ancestors.length);
    matchesLabel.textContent = search.value
      ? "matches " + share(matchedTime(flame.root), flame.root.total) + " of the time" : "";
  }

  function showUnitFlame(unitId) {
    unitSelect.value = unitId;
    buildFlame(unitId);
    drawFlame();
    document.getElementById("flame").scrollIntoView();
  }

  unitSelect.addEventListener("change", function () { buildFlame(unitSelect.value); drawFlame(); });
  search.addEventListener("input", function () { drawFlame(); });
  document.getElementById("flame-reset").addEventListener("click", function () {
    flame.focus = flame.root; drawFlame();
  });

  // ---------------------------------------------------------------- sortable tables

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.querySelectorAll("thead th");
    Array.prototype.forEach.call(heads, function (th, column) {
      if (th.classList.contains("nosort")) { return; }
      th.addEventListener("click", function () {
        var numeric = th.getAttribute("data-type") === "num";
        var descending = th.getAttribute("aria-sort") !== "descending";
        Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var ca = a.cells[column], cb = b.cells[column];
          var order = numeric
            ? parseFloat(ca.getAttribute("data-v")) - parseFloat(cb.getAttribute("data-v"))
            : ca.textContent.localeCompare(cb.textContent);
          return descending ? -order : order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });

  // ---------------------------------------------------------------- start

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (units.length) { drawTimeline(); } drawFlame(); }, 100);
  });
  if (units.length) {
    drawTimeline();
  } else {
    chart.textContent = "No units in this report.";
    chart.classList.add("empty");
  }
  buildFlame("");
  drawFlame();
}());
