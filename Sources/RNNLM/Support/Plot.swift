import Foundation

/// An SVG line chart with a log-scale y axis: the one plotting routine behind a run's
/// `curve.svg` and the gradient-flow plots.
public struct LinePlot: Sendable {
  /// One line: its label, colour (any SVG colour) and points (x, y); points whose y is not
  /// positive and finite cannot sit on a log scale and are left out.
  public struct Series: Sendable {
    /// The legend's text.
    public var label: String
    /// An SVG colour, such as "#1f77b4".
    public var color: String
    /// The points, in drawing order.
    public var points: [(x: Double, y: Double)]
    /// Draws a dot at every point (for a few points, such as epochs).
    public var markers: Bool

    /// A series of the given points.
    public init(label: String, color: String, points: [(x: Double, y: Double)], markers: Bool = false) {
      (self.label, self.color, self.points, self.markers) = (label, color, points, markers)
    }
  }

  /// The lines, drawn in order.
  public var series: [Series]
  /// Axis titles, and a title above the chart (may be empty).
  public var xLabel: String, yLabel: String, title: String
  /// Label every integer x that has a point (epochs) instead of about eight round values.
  public var integerTicks: Bool

  /// A chart of `series`.
  public init(series: [Series], xLabel: String, yLabel: String, title: String = "", integerTicks: Bool = false) {
    (self.series, self.xLabel, self.yLabel, self.title, self.integerTicks) =
      (series, xLabel, yLabel, title, integerTicks)
  }

  /// Palette for series without a colour of their own.
  public static let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]

  /// The chart as an SVG document.
  public func svg(width w: Double = 640, height plotHeight: Double = 400) -> String {
    // The legend sits under the x axis's title, a row per series, so it never hides a line.
    let h = plotHeight + 18 * Double(series.count)
    let (left, right, top, bottom) = (70.0, 20.0, 20.0 + (title.isEmpty ? 0 : 16), 50.0 + 18 * Double(series.count))
    let drawn = series.map { s in
      Series(label: s.label, color: s.color, points: s.points.filter { $0.y.isFinite && $0.y > 0 }, markers: s.markers)
    }
    let ys = drawn.flatMap { $0.points.map(\.y) }
    let xs = drawn.flatMap { $0.points.map(\.x) }
    let lo = log10((ys.min() ?? 10) * 0.9)
    let hi = log10((ys.max() ?? 1000) * 1.1)
    let x0 = xs.min() ?? 0
    let x1 = max(xs.max() ?? 1, x0 + 1)
    func x(_ v: Double) -> Double { left + (w - left - right) * (v - x0) / (x1 - x0) }
    func y(_ v: Double) -> Double { top + (h - top - bottom) * (1 - (log10(v) - lo) / max(hi - lo, 1e-9)) }

    var ticks = ""
    // 1-2-5 per decade; a range narrower than a decade gets every integer multiple; a range of
    // many decades gets one tick per decade, or every few decades.
    let decades = hi - lo
    let step = decades > 16 ? ceil(decades / 8) : 1
    var exponent = floor(lo)
    while exponent <= hi {
      let multiples = decades < 1 ? [1.0, 1.5, 2, 3, 4, 5, 6, 7, 8, 9] : decades > 4 ? [1.0] : [1.0, 2, 5]
      for m in multiples where log10(pow(10, exponent) * m) >= lo && log10(pow(10, exponent) * m) <= hi {
        let v = pow(10, exponent) * m
        ticks += String(
          format:
            "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\">%@</text>",
          left, w - right, y(v), y(v), left - 6, y(v) + 4, Self.label(v))
      }
      exponent += step
    }
    let xTicks: [Double] =
      integerTicks
      ? Array(Set(xs.map { $0.rounded() })).sorted()
      : Self.roundTicks(from: x0, to: x1)
    for t in xTicks {
      ticks += String(
        format: "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"12\">%@</text>", x(t), h - bottom + 18,
        Self.label(t))
    }
    var lines = ""
    var legend = ""
    for (i, s) in drawn.enumerated() {
      let points = s.points.map { String(format: "%.1f,%.1f", x($0.x), y($0.y)) }
      lines +=
        "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>"
      if s.markers {
        lines += s.points.map {
          String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>", x($0.x), y($0.y), s.color)
        }.joined()
      }
      legend += String(
        format: "<text x=\"%.0f\" y=\"%.0f\" font-size=\"13\" fill=\"%@\">— %@</text>", left,
        h - bottom + 52 + 18 * Double(i), s.color, Self.escape(s.label))
    }
    let titleText =
      title.isEmpty
      ? ""
      : "<text x=\"\((w + left) / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">\(Self.escape(title))</text>"
    return """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" font-family="sans-serif">
      <rect width="100%" height="100%" fill="white"/>
      \(titleText)
      \(ticks)
      <line x1="\(left)" y1="\(h - bottom)" x2="\(w - right)" y2="\(h - bottom)" stroke="black"/>
      <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(h - bottom)" stroke="black"/>
      <text x="\((w + left) / 2)" y="\(h - bottom + 36)" text-anchor="middle" font-size="13">\(Self.escape(xLabel))</text>
      <text x="16" y="\((h - bottom + top) / 2)" text-anchor="middle" font-size="13" transform="rotate(-90 16 \((h - bottom + top) / 2))">\(Self.escape(yLabel))</text>
      \(lines)
      \(legend)
      </svg>

      """
  }

  /// About eight round values (1, 2 or 5 times a power of ten apart) covering [a, b].
  static func roundTicks(from a: Double, to b: Double) -> [Double] {
    let raw = (b - a) / 8
    let power = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? raw
    var ticks: [Double] = []
    var t = ceil(a / step) * step
    while t <= b + 1e-9 * step {
      ticks.append(t)
      t += step
    }
    return ticks
  }

  /// A number as a tick label: plain for 0.001...99999, else as 1e-7.
  static func label(_ v: Double) -> String {
    if v == 0 || (abs(v) >= 1e-3 && abs(v) < 1e5) { return String(format: "%g", v) }
    let e = floor(log10(abs(v)))
    let m = v / pow(10, e)
    return abs(m - 1) < 1e-9 ? String(format: "1e%.0f", e) : String(format: "%ge%.0f", m, e)
  }

  static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;")
  }
}
