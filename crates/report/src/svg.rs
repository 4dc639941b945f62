//! Hand-made SVG charts: horizontal bars, columns (histograms), lines and a
//! heatmap. No fonts, scripts or external references: text uses the
//! browser's `sans-serif`, tooltips are SVG `<title>` elements.
//!
//! Every chart is an `<svg data-plot="ID">`, and every mark carries its
//! numbers in `data-*` attributes (`data-series`, `data-label`,
//! `data-value`), so a test can read the plotted values back from the DOM.

use std::fmt::Write as _;

/// Okabe–Ito colours (distinguishable with colour-vision deficiencies).
pub const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999",
];

pub const WIDTH: f64 = 640.0;
pub const FONT: &str = "font-family=\"sans-serif\" font-size=\"11\"";

/// Escapes text for HTML and SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A number for an attribute: finite, at most 6 significant decimals.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "0".into();
    }
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Compact human form: 1234 → 1.2k, 0.00012 → 1.2e-4.
pub fn human(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e9 {
        format!("{:.1}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else if a >= 1e-3 {
        format!("{x:.4}").trim_end_matches('0').to_string()
    } else {
        format!("{x:.1e}")
    }
}

/// Shortens a label to `max` characters.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// "Nice" axis ticks covering [lo, hi].
pub fn ticks(lo: f64, hi: f64, want: usize) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / want.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    let mut t = Vec::new();
    let mut x = start;
    while x <= hi + step * 1e-9 && t.len() < 50 {
        t.push(if x.abs() < step * 1e-9 { 0.0 } else { x });
        x += step;
    }
    t
}

/// One named series of values, one per category.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

fn open(id: &str, height: f64, extra: &str) -> String {
    format!(
        "<svg data-plot=\"{}\" {extra} viewBox=\"0 0 {WIDTH} {h}\" width=\"{WIDTH}\" height=\"{h}\" role=\"img\" {FONT}>",
        esc(id),
        h = num(height)
    )
}

fn legend(o: &mut String, series: &[Series<'_>], x: f64, y: f64) {
    if series.len() < 2 {
        return;
    }
    let mut cx = x;
    for (i, s) in series.iter().enumerate() {
        let _ = write!(
            o,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            num(cx),
            num(y - 9.0),
            PALETTE[i % PALETTE.len()],
            num(cx + 14.0),
            num(y),
            esc(s.name)
        );
        cx += 24.0 + 6.5 * s.name.chars().count() as f64;
    }
}

/// Horizontal grouped bars: one row per category, one bar per series.
/// `fmt` formats the value labels; `max` fixes the scale (e.g. 100 for %).
pub fn hbars(
    id: &str,
    categories: &[String],
    series: &[Series<'_>],
    fmt: &dyn Fn(f64) -> String,
    max: Option<f64>,
) -> String {
    let bar_h = 12.0;
    let group_h = bar_h * series.len() as f64 + 8.0;
    let top = if series.len() > 1 { 26.0 } else { 8.0 };
    let height = top + group_h * categories.len() as f64 + 24.0;
    let label_w = 170.0;
    let plot_w = WIDTH - label_w - 70.0;
    let vmax = max.unwrap_or_else(|| {
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    });
    let scale = if vmax > 0.0 { plot_w / vmax } else { 0.0 };
    let mut o = open(id, height, "");
    legend(&mut o, series, label_w, 16.0);
    // Grid and axis labels.
    for t in ticks(0.0, vmax.max(1e-12), 5) {
        let x = label_w + t * scale;
        let _ = write!(
            o,
            "<line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{b}\" stroke=\"#ddd\"/><text x=\"{x}\" y=\"{ty}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            esc(&fmt(t)),
            x = num(x),
            top = num(top - 2.0),
            b = num(height - 20.0),
            ty = num(height - 6.0)
        );
    }
    for (ci, cat) in categories.iter().enumerate() {
        let gy = top + ci as f64 * group_h;
        let _ = write!(
            o,
            "<g data-label=\"{}\"><text x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{}</title>{}</text>",
            esc(cat),
            num(label_w - 6.0),
            num(gy + group_h / 2.0 + 2.0),
            esc(cat),
            esc(&clip(cat, 28))
        );
        for (si, s) in series.iter().enumerate() {
            // NaN: no value (drawn as "–", no bar).
            let v = s.values.get(ci).copied().unwrap_or(f64::NAN);
            let y = gy + 4.0 + si as f64 * bar_h;
            let w = if v.is_finite() {
                (v.max(0.0) * scale).max(if v > 0.0 { 1.0 } else { 0.0 })
            } else {
                0.0
            };
            let shown = if v.is_finite() {
                fmt(v)
            } else {
                "–".to_string()
            };
            let value = if v.is_finite() { num(v) } else { String::new() };
            let _ = write!(
                o,
                "<rect data-series=\"{}\" data-value=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: {}</title></rect><text x=\"{}\" y=\"{}\" fill=\"#333\">{}</text>",
                esc(s.name),
                value,
                num(label_w),
                num(y),
                num(w),
                num(bar_h - 2.0),
                PALETTE[si % PALETTE.len()],
                esc(s.name),
                esc(&shown),
                num(label_w + w + 4.0),
                num(y + bar_h - 3.0),
                esc(&shown)
            );
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
    o
}

/// Vertical columns (a histogram): one group per bin label.
pub fn columns(id: &str, labels: &[String], series: &[Series<'_>], y_label: &str) -> String {
    let height = 250.0;
    let (left, right, top, bottom) = (56.0, 12.0, 28.0, 46.0);
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    let n = labels.len().max(1) as f64;
    let group_w = plot_w / n;
    let bar_w = (group_w * 0.85 / series.len().max(1) as f64).clamp(0.5, 36.0);
    let pad = (group_w - bar_w * series.len() as f64) / 2.0;
    let vmax = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let scale = if vmax > 0.0 { plot_h / vmax } else { 0.0 };
    // Counts: no fractional ticks.
    let integral = series
        .iter()
        .flat_map(|s| s.values.iter())
        .all(|v| v.fract() == 0.0);
    let mut o = open(id, height, "");
    legend(&mut o, series, left, 14.0);
    for t in ticks(0.0, vmax.max(1e-12), 4)
        .into_iter()
        .filter(|t| !integral || t.fract() == 0.0)
    {
        let y = top + plot_h - t * scale;
        let _ = write!(
            o,
            "<line x1=\"{left}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            esc(&human(t)),
            left = num(left),
            r = num(WIDTH - right),
            y = num(y),
            tx = num(left - 4.0),
            ty = num(y + 4.0)
        );
    }
    let _ = write!(
        o,
        "<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
        num(top + plot_h / 2.0),
        num(top + plot_h / 2.0),
        esc(y_label)
    );
    let every = (labels.len() / 12).max(1);
    for (bi, label) in labels.iter().enumerate() {
        let gx = left + bi as f64 * group_w;
        for (si, s) in series.iter().enumerate() {
            let v = s.values.get(bi).copied().unwrap_or(0.0);
            let h = v.max(0.0) * scale;
            let _ = write!(
                o,
                "<rect data-series=\"{}\" data-label=\"{}\" data-value=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                esc(s.name),
                esc(label),
                num(v),
                num(gx + pad + si as f64 * bar_w),
                num(top + plot_h - h),
                num(bar_w),
                num(h),
                PALETTE[si % PALETTE.len()],
                esc(s.name),
                esc(label),
                esc(&human(v))
            );
        }
        if bi % every == 0 {
            let x = gx + group_w / 2.0;
            let y = top + plot_h + 12.0;
            let _ = write!(
                o,
                "<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" transform=\"rotate(-35 {x} {y})\" fill=\"#555\">{}</text>",
                esc(&clip(label, 14)),
                x = num(x),
                y = num(y)
            );
        }
    }
    let _ = write!(
        o,
        "<line x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/></svg>",
        l = num(left),
        r = num(WIDTH - right),
        b = num(top + plot_h)
    );
    o
}

/// One line: points (x, y), sorted by x.
pub struct Line<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// At most `max` points of a line, evenly spaced in index, first and last
/// kept (long training runs stay a few hundred KB).
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let step = (points.len() - 1) as f64 / (max - 1) as f64;
    (0..max)
        .map(|i| points[((i as f64 * step).round() as usize).min(points.len() - 1)])
        .collect()
}

/// A line chart; `log_y` plots log10(y) (non-positive values are skipped).
pub fn lines(id: &str, series: &[Line<'_>], x_label: &str, y_label: &str, log_y: bool) -> String {
    let height = 240.0;
    let (left, right, top, bottom) = (60.0, 14.0, 26.0, 40.0);
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    let ty = |y: f64| if log_y { y.log10() } else { y };
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
        .map(|(x, y)| (x, ty(y)))
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) = pts.iter().fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), (x, y)| (a.min(*x), b.max(*x), c.min(*y), d.max(*y)),
    );
    if pts.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        let pad = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.05 };
        (y0, y1) = (y0 - pad, y1 + pad);
    }
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * plot_w;
    let sy = |y: f64| top + plot_h - (y - y0) / (y1 - y0) * plot_h;
    let mut o = open(id, height, "");
    let legend_series: Vec<Series<'_>> = series
        .iter()
        .map(|s| Series {
            name: s.name,
            values: vec![],
        })
        .collect();
    legend(&mut o, &legend_series, left, 14.0);
    for t in ticks(y0, y1, 4) {
        let label = if log_y {
            human(10f64.powf(t))
        } else {
            human(t)
        };
        let _ = write!(
            o,
            "<line x1=\"{l}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{tx}\" y=\"{yy}\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            esc(&label),
            l = num(left),
            r = num(WIDTH - right),
            y = num(sy(t)),
            tx = num(left - 4.0),
            yy = num(sy(t) + 4.0)
        );
    }
    for t in ticks(x0, x1, 6) {
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            num(sx(t)),
            num(top + plot_h + 14.0),
            esc(&human(t))
        );
    }
    let _ = write!(
        o,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}</text><text x=\"12\" y=\"{m}\" transform=\"rotate(-90 12 {m})\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
        num(left + plot_w / 2.0),
        num(height - 6.0),
        esc(x_label),
        esc(&format!("{y_label}{}", if log_y { " (log)" } else { "" })),
        m = num(top + plot_h / 2.0)
    );
    for (i, s) in series.iter().enumerate() {
        let mut d = String::new();
        let mut n = 0usize;
        for (x, y) in &s.points {
            if !(x.is_finite() && y.is_finite()) || (log_y && *y <= 0.0) {
                continue;
            }
            let _ = write!(
                d,
                "{}{},{}",
                if n == 0 { "M" } else { " L" },
                num(sx(*x)),
                num(sy(ty(*y)))
            );
            n += 1;
        }
        let last = s.points.last().map_or(0.0, |p| p.1);
        let _ = write!(
            o,
            "<path data-series=\"{}\" data-points=\"{n}\" data-last=\"{}\" d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"><title>{}</title></path>",
            esc(s.name),
            num(last),
            PALETTE[i % PALETTE.len()],
            esc(s.name)
        );
        if n == 1 {
            if let Some((x, y)) = s
                .points
                .iter()
                .find(|(x, y)| x.is_finite() && y.is_finite())
            {
                let _ = write!(
                    o,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"/>",
                    num(sx(*x)),
                    num(sy(ty(*y))),
                    PALETTE[i % PALETTE.len()]
                );
            }
        }
    }
    let _ = write!(
        o,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/></svg>",
        num(left),
        num(top),
        num(plot_w),
        num(plot_h)
    );
    o
}

/// A matrix as coloured cells (rows = gold, columns = predicted).
pub fn heatmap(id: &str, labels: &[String], matrix: &[Vec<f64>]) -> String {
    let n = labels.len().max(1);
    let label_w = 110.0;
    let cell = ((WIDTH - label_w - 20.0) / n as f64).clamp(8.0, 48.0);
    let height = 40.0 + label_w + cell * n as f64;
    let vmax = matrix
        .iter()
        .flat_map(|r| r.iter().copied())
        .fold(0.0, f64::max);
    let mut o = open(id, height, "");
    let _ = write!(
        o,
        "<text x=\"{}\" y=\"14\" text-anchor=\"middle\" fill=\"#555\">predicted →</text><text x=\"12\" y=\"{m}\" transform=\"rotate(-90 12 {m})\" text-anchor=\"middle\" fill=\"#555\">gold →</text>",
        num(label_w + cell * n as f64 / 2.0),
        m = num(label_w + cell * n as f64 / 2.0)
    );
    for (j, l) in labels.iter().enumerate() {
        let x = label_w + cell * (j as f64 + 0.5);
        let _ = write!(
            o,
            "<text x=\"{x}\" y=\"{y}\" transform=\"rotate(-60 {x} {y})\" fill=\"#333\">{}</text>",
            esc(&clip(l, 16)),
            x = num(x),
            y = num(label_w - 4.0)
        );
    }
    for (i, row) in matrix.iter().enumerate() {
        let y = label_w + cell * i as f64;
        let gold = labels.get(i).map_or("", String::as_str);
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#333\">{}</text>",
            num(label_w - 6.0),
            num(y + cell / 2.0 + 4.0),
            esc(&clip(gold, 16))
        );
        for (j, v) in row.iter().enumerate() {
            let t = if vmax > 0.0 { v / vmax } else { 0.0 };
            // White → blue.
            let c = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
            let fill = format!(
                "#{:02x}{:02x}{:02x}",
                c(255.0, 0.0),
                c(255.0, 114.0),
                c(255.0, 178.0)
            );
            let pred = labels.get(j).map_or("", String::as_str);
            let _ = write!(
                o,
                "<rect data-gold=\"{}\" data-pred=\"{}\" data-value=\"{}\" x=\"{}\" y=\"{}\" width=\"{c}\" height=\"{c}\" fill=\"{fill}\" stroke=\"#fff\"><title>gold {} → predicted {}: {}</title></rect>",
                esc(gold),
                esc(pred),
                num(*v),
                num(label_w + cell * j as f64),
                num(y),
                esc(gold),
                esc(pred),
                esc(&human(*v)),
                c = num(cell)
            );
            if cell >= 22.0 {
                let _ = write!(
                    o,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
                    num(label_w + cell * (j as f64 + 0.5)),
                    num(y + cell / 2.0 + 4.0),
                    if t > 0.55 { "#fff" } else { "#222" },
                    esc(&human(*v))
                );
            }
        }
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_cover_the_range() {
        assert_eq!(
            ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(ticks(0.0, 1.0, 4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let t = ticks(2.31, 2.87, 4);
        assert!(
            t.first().unwrap() >= &2.31 && t.last().unwrap() <= &2.87,
            "{t:?}"
        );
    }

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(100.0), "100");
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(human(1234567.0), "1.2M");
        assert_eq!(human(0.5), "0.5");
    }

    #[test]
    fn charts_carry_their_values() {
        let s = hbars(
            "x",
            &["a".into(), "b<".into()],
            &[Series {
                name: "docs",
                values: vec![50.0, 25.0],
            }],
            &|v| format!("{v:.1}%"),
            Some(100.0),
        );
        assert!(s.starts_with("<svg data-plot=\"x\""));
        assert!(s.contains("data-label=\"b&lt;\""));
        assert!(s.contains("data-series=\"docs\" data-value=\"25\""));
        let l = lines(
            "l",
            &[Line {
                name: "loss",
                points: vec![(1.0, 3.0), (2.0, 2.0)],
            }],
            "step",
            "loss",
            false,
        );
        assert!(l.contains("data-points=\"2\" data-last=\"2\""), "{l}");
        assert_eq!(thin(&[(0.0, 0.0); 10], 4).len(), 4);
    }
}
