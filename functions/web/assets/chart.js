/* A bar chart drawn as inline SVG with DOM APIs: no library, no CDN, no inline style, so it fits the CSP.
   Every label goes in as text (textContent), never markup. Colours come from the console's stylesheet (classes). */
"use strict";

const ImageClassifyChart = Object.freeze({
  /* Draw `points` ([{label, value}]) as bars into `box`, replacing what it held; `title` names the chart for
     assistive technology (the table behind it holds every figure). */
  bars(box, points, title) {
    const NS = "http://www.w3.org/2000/svg";
    const make = (tag, attrs, text) => {
      const node = document.createElementNS(NS, tag);
      for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
      if (text !== undefined) node.textContent = text;
      return node;
    };
    const width = 600, height = 220, left = 44, bottom = 28, top = 12;
    const max = Math.max(1, ...points.map((p) => p.value));
    const step = (width - left - 8) / Math.max(1, points.length);
    const y = (v) => top + (height - top - bottom) * (1 - v / max);
    const svg = make("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title,
                              class: "bar-chart", preserveAspectRatio: "xMinYMin meet" });
    svg.append(make("title", {}, title));
    for (const v of new Set([0, Math.round(max / 2), max])) {  // the scale: zero, half and the top, whole tokens
      const at = y(v);
      svg.append(make("line", { x1: left, x2: width - 4, y1: at, y2: at, class: "grid" }));
      svg.append(make("text", { x: left - 6, y: at + 4, "text-anchor": "end", class: "axis" }, String(v)));
    }
    points.forEach((p, i) => {
      const x = left + i * step;
      const bar = make("rect", { x: x + step * 0.15, y: y(p.value), width: Math.max(1, step * 0.7),
                                 height: Math.max(0, y(0) - y(p.value)), class: "bar", "data-label": p.label,
                                 "data-value": p.value });
      bar.append(make("title", {}, `${p.label}: ${p.value}`));
      svg.append(bar);
      if ((points.length - 1 - i) % 7 === 0) {  // a label a week, counted back from the last day
        svg.append(make("text", { x: x + step / 2, y: height - 8, "text-anchor": "middle", class: "axis" },
                        p.label.slice(5)));
      }
    });
    box.replaceChildren(svg);
    return svg;
  },
});
