//! Exports for people: the records of a period as CSV (one row per bag, one group of columns
//! per agency), an archived bag's image with its marks drawn on it, the view a station shows
//! (its image function through the CPU twin, the marks it shows), and the training report.
//!
//! Owns: the CSV columns, and drawing marks (outlines in the agency's colour, the mark's number
//! beside each) into an RGBA image without a window or a font library.
//!
//! Must not import: egui, wgpu, tokio.

use std::io::Write;

use ndarray::Array3;

use crate::domain::inspection::{Annotation, InspectionConfig, OutcomeState, Shape};
use crate::files::store::{BagQuery, Store, StoreError};

/// The UTC time of a Unix time in milliseconds (clamped to what jiff holds: years -9999..9999).
pub fn timestamp(ms: u64) -> jiff::Timestamp {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::MAX)
}

/// ISO 8601 UTC (`2026-11-28T06:15:02Z`) of a Unix time in milliseconds.
pub fn utc(ms: u64) -> String {
    timestamp(ms).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn outcome(state: &OutcomeState) -> String {
    match state {
        OutcomeState::Pending { waiting_for } => format!("pending ({})", waiting_for.join(", ")),
        OutcomeState::Released => "released".into(),
        OutcomeState::Opened { by, joint } => {
            format!("{} ({})", if *joint { "joint opening" } else { "open" }, by.join(", "))
        }
        OutcomeState::Held { by } => format!("held ({})", by.join(", ")),
        OutcomeState::Referred { by } => format!("referred ({})", by.join(", ")),
    }
}

/// Write the bags `q` finds as CSV, oldest first: UTF-8 with a byte-order mark so spreadsheet
/// programs show the Chinese text. Returns the number of bags.
pub fn records_csv(
    store: &Store,
    cfg: &InspectionConfig,
    q: &BagQuery,
    out: impl Write,
) -> Result<usize, StoreError> {
    records_csv_with(store, cfg, q, out, |_, _| {})
}

/// [`records_csv`], telling `progress` (bags written so far, bags found) before each bag.
pub fn records_csv_with(
    store: &Store,
    cfg: &InspectionConfig,
    q: &BagQuery,
    out: impl Write,
    mut progress: impl FnMut(usize, usize),
) -> Result<usize, StoreError> {
    let bad = |e: csv::Error| StoreError::Bad(format!("CSV: {e}"));
    let mut out = out;
    out.write_all("\u{feff}".as_bytes()).map_err(|e| StoreError::Io { path: "CSV".into(), source: e })?;
    let mut w = csv::Writer::from_writer(out);
    let mut head: Vec<String> = [
        "archive_id",
        "started_utc",
        "ended_utc",
        "state",
        "scanner_bag",
        "item_id",
        "lines",
        "missing_lines",
        "outcome",
        "opening",
    ]
    .map(String::from)
    .to_vec();
    for a in &cfg.agencies {
        for c in
            ["decision", "operator", "decided_utc", "reason", "changes", "marks", "findings", "treatment"]
        {
            head.push(format!("{}_{c}", a.id));
        }
    }
    head.extend(["scan_file", "scan_sha256", "note"].map(String::from));
    w.write_record(&head).map_err(bad)?;
    let mut rows = store.bags(q)?;
    rows.reverse();
    for (n, row) in rows.iter().enumerate() {
        progress(n, rows.len());
        let rec = store.record(row.id)?;
        let mut r = vec![
            row.id.to_string(),
            utc(row.started_ms),
            row.ended_ms.map(utc).unwrap_or_default(),
            row.state.as_str().to_string(),
            row.scanner_bag.to_string(),
            row.item_id.clone().unwrap_or_default(),
            row.lines.map(|l| l.to_string()).unwrap_or_default(),
            row.missing_rows.len().to_string(),
            outcome(&rec.outcome(cfg).state),
        ];
        let opening = rec.opening(cfg);
        r.push(match &opening {
            None => String::new(),
            Some(o) if o.closed => "closed".into(),
            Some(_) => "under way".into(),
        });
        for a in &cfg.agencies {
            let cur = rec.current(&a.id);
            let n = rec.decisions.iter().filter(|d| d.agency == a.id).count();
            r.push(cur.map(|d| d.code.clone()).unwrap_or_default());
            r.push(cur.map(|d| d.operator.clone()).unwrap_or_default());
            r.push(cur.map(|d| utc(d.at_ms)).unwrap_or_default());
            r.push(cur.and_then(|d| d.reason.clone()).unwrap_or_default());
            r.push(n.saturating_sub(1).to_string());
            r.push(rec.annotations_of(&a.id).count().to_string());
            // The agency's findings at the opening in force: "nothing found", or items.
            let f = opening
                .as_ref()
                .and_then(|o| o.results.iter().find(|(g, _)| g == &a.id))
                .and_then(|(_, f)| f.as_ref());
            r.push(f.map_or(String::new(), |f| {
                if f.items.is_empty() {
                    "nothing found".into()
                } else {
                    let items: Vec<String> = f
                        .items
                        .iter()
                        .map(|it| {
                            let note =
                                if it.note.is_empty() { String::new() } else { format!(" ({})", it.note) };
                            format!("{} x{}{note}", it.category, it.count)
                        })
                        .collect();
                    items.join("; ")
                }
            }));
            r.push(f.and_then(|f| f.treatment.clone()).unwrap_or_default());
        }
        r.push(row.scan_file.clone().unwrap_or_default());
        r.push(row.scan_sha256.clone().unwrap_or_default());
        r.push(row.note.clone().unwrap_or_default());
        w.write_record(&r).map_err(bad)?;
    }
    w.flush().map_err(|e| StoreError::Io { path: "CSV".into(), source: e })?;
    Ok(rows.len())
}

/// The colour marks of `agency` are drawn in on exports (as on screen: customs red, quarantine
/// blue, others amber).
pub fn agency_rgb(cfg: &InspectionConfig, agency: &str) -> [u8; 3] {
    cfg.colour(agency)
}

struct Canvas<'a> {
    img: &'a mut Array3<u8>,
    rgb: [u8; 3],
}

impl Canvas<'_> {
    fn dot(&mut self, x: i64, y: i64, r: i64) {
        let (h, w, _) = self.img.dim();
        for yy in y - r..=y + r {
            for xx in x - r..=x + r {
                if xx >= 0 && yy >= 0 && (xx as usize) < w && (yy as usize) < h {
                    let (xx, yy) = (xx as usize, yy as usize);
                    for (c, v) in self.rgb.iter().enumerate() {
                        self.img[[yy, xx, c]] = *v;
                    }
                    self.img[[yy, xx, 3]] = 255;
                }
            }
        }
    }

    fn line(&mut self, a: (f32, f32), b: (f32, f32)) {
        let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as i64).clamp(1, 1 << 16);
        for i in 0..=n {
            let t = i as f32 / n as f32;
            self.dot((a.0 + (b.0 - a.0) * t).round() as i64, (a.1 + (b.1 - a.1) * t).round() as i64, 1);
        }
    }

    /// A number in a 3 x 5 pixel font, scaled by `s`, top-left at (x, y).
    fn number(&mut self, x: i64, y: i64, n: u64, s: i64) {
        const DIGITS: [[u8; 5]; 10] = [
            [7, 5, 5, 5, 7],
            [2, 6, 2, 2, 7],
            [7, 1, 7, 4, 7],
            [7, 1, 7, 1, 7],
            [5, 5, 7, 1, 1],
            [7, 4, 7, 1, 7],
            [7, 4, 7, 5, 7],
            [7, 1, 1, 1, 1],
            [7, 5, 7, 5, 7],
            [7, 5, 7, 1, 7],
        ];
        for (k, ch) in n.to_string().bytes().enumerate() {
            let g = DIGITS[(ch - b'0') as usize];
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        for dy in 0..s {
                            for dx in 0..s {
                                self.dot(x + (k as i64 * 4 + col) * s + dx, y + row as i64 * s + dy, 0);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Draw `marks` on a rendered bag (`img`: rows = channels from the top as on screen, columns =
/// lines), each outlined in its agency's colour with its number beside it.
pub fn draw_marks(img: &mut Array3<u8>, marks: &[Annotation], cfg: &InspectionConfig) {
    let rows = img.dim().0 as f32;
    let p = |b: [f32; 2]| (b[0], rows - b[1]);
    for m in marks {
        let mut c = Canvas { img: &mut *img, rgb: agency_rgb(cfg, &m.agency) };
        let anchor = match &m.shape {
            Shape::Rect { x0, y0, x1, y1 } => {
                let (a, b) = (p([*x0, *y0]), p([*x1, *y1]));
                c.line(a, (b.0, a.1));
                c.line((b.0, a.1), b);
                c.line(b, (a.0, b.1));
                c.line((a.0, b.1), a);
                (a.0.min(b.0), a.1.min(b.1))
            }
            Shape::Ellipse { cx, cy, rx, ry } => {
                let (cx, cy) = p([*cx, *cy]);
                let steps = 8 + (rx.abs() + ry.abs()).min(4096.0) as usize;
                let at = |i: usize| {
                    let t = i as f32 / steps as f32 * std::f32::consts::TAU;
                    (cx + rx * t.cos(), cy + ry * t.sin())
                };
                for i in 0..steps {
                    c.line(at(i), at(i + 1));
                }
                (cx - rx, cy - ry)
            }
            Shape::Polygon { points } => {
                let pts: Vec<(f32, f32)> = points.iter().map(|q| p(*q)).collect();
                for (i, a) in pts.iter().enumerate() {
                    c.line(*a, pts[(i + 1) % pts.len()]);
                }
                pts.iter().fold(pts[0], |a, q| (a.0.min(q.0), a.1.min(q.1)))
            }
            Shape::Arrow { from, to } => {
                let (a, b) = (p(*from), p(*to));
                c.line(a, b);
                let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                let len = (dx * dx + dy * dy).sqrt().max(1e-3);
                let (ux, uy) = (dx / len, dy / len);
                let head = 12.0f32.min(len / 2.0);
                for s in [-1.0f32, 1.0] {
                    let back = (b.0 - ux * head - s * uy * head * 0.5, b.1 - uy * head + s * ux * head * 0.5);
                    c.line(b, back);
                }
                a
            }
            Shape::Text { at } => {
                let q = p(*at);
                c.dot(q.0 as i64, q.1 as i64, 4);
                q
            }
        };
        c.number(anchor.0 as i64 + 2, anchor.1 as i64 - 14, m.id, 2);
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The plots' size in pixels and their fonts (the page's, drawn by the browser).
const PLOT: (u32, u32) = (600, 280);
const PLOT_FONT: &str = "Noto Sans CJK SC, sans-serif";
/// Tick labels and axis titles: plotters' SVG writes a font of size s as s / 1.24 pixels, so these
/// come out as 13 and 14 px, the size of the page's small print.
const PLOT_TEXT: (f64, f64) = (16.0, 17.5);

/// The hit rate after each bag that had a projected threat, as SVG.
fn hit_rate_plot(pts: &[(u32, f64)]) -> Result<String, Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT).into_drawing_area();
        root.fill(&WHITE)?;
        let n = pts.last().map_or(1, |p| p.0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size(48)
            .build_cartesian_2d(0u32..n, 0f64..1.0)?;
        chart
            .configure_mesh()
            .x_desc("projected threats seen 已见投射威胁")
            .y_desc("hit rate 命中率")
            .x_labels((n as usize + 1).min(12))
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((PLOT_FONT, PLOT_TEXT.0))
            .axis_desc_style((PLOT_FONT, PLOT_TEXT.1))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        let red = RGBColor(192, 57, 43);
        chart.draw_series(LineSeries::new(pts.iter().copied(), red.stroke_width(2)))?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, red.filled())))?;
        root.present()?;
    }
    Ok(svg)
}

/// Decision times in ten bins from 0 to the slowest, as SVG.
fn times_plot(times: &[f64]) -> Result<String, Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let tmax = times.last().copied().unwrap_or(1.0).max(1.0);
    let mut bins = [0u32; 10];
    for t in times {
        bins[((t / tmax * 10.0) as usize).min(9)] += 1;
    }
    let top = bins.iter().copied().max().unwrap_or(1).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..tmax, 0u32..top + 1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("decision time (s) 判图时间 (秒)")
            .y_desc("bags 件数")
            .x_labels(11)
            .y_labels((top as usize + 2).min(10))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .label_style((PLOT_FONT, PLOT_TEXT.0))
            .axis_desc_style((PLOT_FONT, PLOT_TEXT.1))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        let w = tmax / 10.0;
        chart.draw_series(bins.iter().enumerate().map(|(i, &c)| {
            let x0 = i as f64 * w;
            let mut r = Rectangle::new([(x0, 0), (x0 + w, c)], RGBColor(41, 128, 185).filled());
            r.set_margin(0, 0, 1, 1);
            r
        }))?;
        root.present()?;
    }
    Ok(svg)
}

/// An operator's training report: a self-contained HTML page (inline SVG plots, no scripts,
/// nothing fetched) with the signal-detection summary, the hit rate over the session, and the
/// distribution of decision times.
pub fn training_report_html(operator: &str, rows: &[crate::files::store::TrainingRow]) -> String {
    use crate::domain::tip::{TrainingResult, sensitivity};
    let results: Vec<TrainingResult> = rows.iter().map(|r| r.result).collect();
    let s = sensitivity(&results);
    let mut times: Vec<f64> = rows.iter().map(|r| r.decision_ms as f64 / 1000.0).collect();
    times.sort_by(f64::total_cmp);
    let median = if times.is_empty() { 0.0 } else { times[times.len() / 2] };
    // Hit rate over the bags that had a projected threat, cumulative.
    let mut pts = Vec::new();
    let (mut n, mut h) = (0u32, 0u32);
    for r in rows {
        match r.result {
            TrainingResult::Hit => {
                n += 1;
                h += 1;
            }
            TrainingResult::Miss => n += 1,
            _ => continue,
        }
        pts.push((n, h as f64 / n as f64));
    }
    let hit_svg = hit_rate_plot(&pts).unwrap_or_else(|e| format!("<p>(plot: {})</p>", esc(&e.to_string())));
    let time_svg = times_plot(&times).unwrap_or_else(|e| format!("<p>(plot: {})</p>", esc(&e.to_string())));
    let table: String = rows
        .iter()
        .map(|r| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
                utc(r.at_ms),
                r.bag,
                esc(r.threat.as_deref().unwrap_or("-")),
                r.result.as_str(),
                r.decision_ms as f64 / 1000.0
            )
        })
        .collect();
    format!(
        r##"<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>Training report 培训报告: {op}</title>
<style>body{{font-family:"Noto Sans CJK SC",sans-serif;margin:24px;color:#222}} td,th{{padding:2px 10px;text-align:left}} .k{{font-size:28px;font-weight:bold}}</style></head>
<body>
<h1>Training report 培训报告 — {op}</h1>
<p>{n} bags judged 判图数 · hits 命中 {h} · misses 漏判 {m} · false alarms 误报 {f} · correct releases 正确放行 {c}</p>
<p>hit rate 命中率 <span class="k" id="hit-rate">{hr:.2}</span> · false-alarm rate 误报率 <span class="k" id="fa-rate">{fr:.2}</span> · d′ <span class="k" id="d-prime">{dp:.2}</span> · median decision time 判图时间中位数 <span class="k" id="median-time">{med:.1} s</span></p>
<h2>Hit rate over the session 命中率变化</h2>
{hit_svg}
<h2>Decision times 判图时间分布</h2>
{time_svg}
<h2>Every bag 明细</h2>
<table><tr><th>time (UTC)</th><th>bag</th><th>projected threat</th><th>result</th><th>decision (s)</th></tr>{table}</table>
<p>d′ = z(H) − z(F) with the log-linear correction ((n + 0.5) / (N + 1)).</p>
</body></html>
"##,
        op = esc(operator),
        n = rows.len(),
        h = s.hits,
        m = s.misses,
        f = s.false_alarms,
        c = s.correct_rejects,
        hr = s.hit_rate,
        fr = s.false_alarm_rate,
        dp = s.d_prime,
        med = median,
    )
}

/// An archived bag's lost lines as one flag per line (they are drawn hatched, never as image).
pub fn missing_flags(row: &crate::files::store::BagRow, lines: usize) -> Vec<bool> {
    let mut missing = vec![false; lines];
    for r in &row.missing_rows {
        if let Some(m) = missing.get_mut(*r) {
            *m = true;
        }
    }
    missing
}

/// A scan through the CPU twin of the display kernels under `view`.
pub fn render_cpu(
    profile: &crate::domain::profile::ScannerProfile,
    frame: &crate::domain::scan::RawFrame,
    calib: &crate::domain::calib::Calibration,
    missing: &[bool],
    view: &crate::domain::view::ViewSettings,
) -> Result<Array3<u8>, crate::domain::physics::PhysicsError> {
    let lut = crate::domain::material::MaterialLut::for_profile(profile)?;
    let p = crate::pipeline::params::Params::new(
        view,
        &lut,
        frame.channels() as u32,
        frame.lines() as u32,
        profile.full_scale(),
        false,
    );
    Ok(crate::pipeline::cpu::render(frame.low.view(), frame.high.view(), &calib.table(), &lut, &p, missing))
}

/// An archived bag as a station shows it: its scan through the CPU twin of the display kernels
/// under `view` (the station's image function), with the marks of `agencies` drawn, as RGBA.
pub fn view_rgba(
    store: &Store,
    id: i64,
    profile: &crate::domain::profile::ScannerProfile,
    view: &crate::domain::view::ViewSettings,
    cfg: &InspectionConfig,
    agencies: &[String],
) -> Result<Array3<u8>, StoreError> {
    let row = store.bag(id)?;
    let frame = store.scan(id)?;
    let calib = store.calibration(id)?;
    let rec = store.record(id)?;
    let missing = missing_flags(&row, frame.lines());
    let mut rgba = render_cpu(profile, &frame, &calib, &missing, view)
        .map_err(|e| StoreError::Bad(format!("material table: {e}")))?;
    let marks: Vec<Annotation> =
        rec.annotations.into_iter().filter(|a| agencies.contains(&a.agency)).collect();
    draw_marks(&mut rgba, &marks, cfg);
    Ok(rgba)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers an SVG element's attribute holds, in the order the elements come.
    fn attr(svg: &str, elem: &str, fill: &str, name: &str) -> Vec<f64> {
        svg.split(&format!("<{elem} "))
            .skip(1)
            .filter(|e| e.contains(&format!("fill=\"{fill}\"")))
            .map(|e| {
                let e = format!(" {}", &e[..e.find('>').unwrap_or(e.len())]);
                let v = e.split(&format!(" {name}=\"")).nth(1).expect("attribute");
                v[..v.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn the_plots_put_each_value_where_its_scale_says() {
        // Hit rates 1.0, 0.5, 0.0: three points, the middle one halfway down.
        let svg = hit_rate_plot(&[(1, 1.0), (2, 0.5), (3, 0.0)]).unwrap();
        let cy = attr(&svg, "circle", "#C0392B", "cy");
        assert_eq!(cy.len(), 3, "{svg}");
        assert!(cy[0] < cy[1] && cy[1] < cy[2]);
        assert!(((cy[1] - cy[0]) - (cy[2] - cy[1])).abs() <= 1.0, "{cy:?}");
        let cx = attr(&svg, "circle", "#C0392B", "cx");
        assert!(((cx[1] - cx[0]) - (cx[2] - cx[1])).abs() <= 1.0, "{cx:?}");
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim())
            .collect();
        assert!(
            texts.contains(&"hit rate 命中率") && texts.contains(&"0.6"),
            "axis title and ticks: {texts:?}"
        );
        // Times 0.5, 0.6, 5.5, 10 s: bins 0-1 s twice, 5-6 s and 9-10 s once, the others empty.
        let svg = times_plot(&[0.5, 0.6, 5.5, 10.0]).unwrap();
        let h = attr(&svg, "rect", "#2980B9", "height");
        assert_eq!(h.len(), 10, "{svg}");
        assert!(h[5] > 0.0 && (h[0] - 2.0 * h[5]).abs() <= 1.0 && h[9] == h[5], "{h:?}");
        assert!(h.iter().enumerate().all(|(i, &v)| [0, 5, 9].contains(&i) || v == 0.0), "{h:?}");
    }

    #[test]
    fn utc_dates_match_the_calendar() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56 UTC, from `date -u -d ... +%s`.
        assert_eq!(utc(951_827_696_000), "2000-02-29T12:34:56Z");
        assert_eq!(utc(1_795_845_188_668), "2026-11-28T05:53:08Z");
        assert_eq!(utc(u64::MAX), "9999-12-30T22:00:00Z", "clamped, not wrapped");
    }
}
