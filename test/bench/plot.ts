// An SVG line plot of delivery latency against N (log-log) for the hub and the baseline, p50 and p99.

interface Point {
  n: number;
  hub: { p50: number; p99: number };
  baseline: { p50: number; p99: number };
}

export function latencyPlot(points: Point[], runtime: string): string {
  const W = 640, H = 400, L = 70, R = 170, T = 30, B = 50;
  const ns = points.map((p) => p.n);
  const values = points.flatMap((p) => [p.hub.p50, p.hub.p99, p.baseline.p50, p.baseline.p99]).filter((v) => v > 0);
  const log = Math.log10;
  const xMin = log(Math.min(...ns)), xMax = log(Math.max(...ns)) || 1;
  const yMin = Math.floor(log(Math.min(...values))), yMax = Math.ceil(log(Math.max(...values)));
  const x = (n: number) => L + ((log(n) - xMin) / (xMax - xMin || 1)) * (W - L - R);
  const y = (v: number) => H - B - ((log(v) - yMin) / (yMax - yMin || 1)) * (H - T - B);
  const series = [
    { label: "hub p50", color: "#1f5fbf", dash: "", get: (p: Point) => p.hub.p50 },
    { label: "hub p99", color: "#1f5fbf", dash: "6 4", get: (p: Point) => p.hub.p99 },
    { label: "baseline p50", color: "#c0392b", dash: "", get: (p: Point) => p.baseline.p50 },
    { label: "baseline p99", color: "#c0392b", dash: "6 4", get: (p: Point) => p.baseline.p99 },
  ];
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${L}" y="18" font-size="14">Publish → delivered to all N subscribers (ms, log-log), ${runtime}</text>`);
  for (let e = yMin; e <= yMax; e++) {
    const v = 10 ** e;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
  }
  for (const n of ns) parts.push(`<line x1="${x(n)}" x2="${x(n)}" y1="${T}" y2="${H - B}" stroke="#eee"/><text x="${x(n)}" y="${H - B + 18}" text-anchor="middle">${n}</text>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">N subscribers</text>`);
  series.forEach((s, i) => {
    const pts = points.filter((p) => s.get(p) > 0).map((p) => `${x(p.n).toFixed(1)},${y(s.get(p)).toFixed(1)}`).join(" ");
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}" points="${pts}"/>`);
    const ly = T + 20 + i * 20;
    parts.push(`<line x1="${W - R + 15}" x2="${W - R + 45}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/><text x="${W - R + 52}" y="${ly + 4}">${s.label}</text>`);
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
