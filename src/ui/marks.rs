//! Marking what an operator sees: rectangle, ellipse, polygon, arrow and text note on the live
//! image, each with a category of the operator's agency and a free note; the other agency's marks
//! shown read-only, on or off per screen (信息共享).
//!
//! Owns: the drawing tool state of one screen ([`MarkTool`]), the conversion between scan
//! coordinates of a bag (x: line from the bag's first line, y: channel) and the screen, and the
//! overlay drawing. The marks themselves live in the bag's record (domain `inspection`), which
//! decides who may add, change or delete them.

use eframe::egui;

use super::i18n::Lang;
use super::zoom::Mapping;
use crate::domain::inspection::{InspectionConfig, Shape};

/// Which tool the primary mouse button uses on the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Drag pans (no marking).
    Pan,
    Rect,
    Ellipse,
    Arrow,
    Text,
    Polygon,
    /// Measures: a line's length in mm (not a mark: nothing is recorded).
    Ruler,
    /// Measures what lies in a box above its background (not a mark).
    Region,
}

impl Tool {
    pub const ALL: [Tool; 8] = [
        Tool::Pan,
        Tool::Rect,
        Tool::Ellipse,
        Tool::Arrow,
        Tool::Text,
        Tool::Polygon,
        Tool::Ruler,
        Tool::Region,
    ];

    /// A measuring tool (works without anyone logged in; records nothing).
    pub fn measures(self) -> bool {
        matches!(self, Tool::Ruler | Tool::Region)
    }

    pub fn name(self) -> (&'static str, &'static str) {
        match self {
            Tool::Pan => ("Pan", "平移"),
            Tool::Rect => ("Box", "矩形"),
            Tool::Ellipse => ("Ellipse", "椭圆"),
            Tool::Arrow => ("Arrow", "箭头"),
            Tool::Text => ("Note", "文字"),
            Tool::Polygon => ("Polygon", "多边形"),
            Tool::Ruler => ("Ruler", "标尺"),
            Tool::Region => ("Region", "区域"),
        }
    }
}

/// One screen's marking state.
#[derive(Clone, Debug)]
pub struct MarkTool {
    pub tool: Tool,
    pub category: String,
    pub note: String,
    /// Show the other agencies' marks (read-only).
    pub show_others: bool,
    /// The bag a mark being drawn goes to (the one under its first point).
    pub bag: Option<u64>,
    /// Polygon vertices placed so far (bag coordinates).
    pub polygon: Vec<[f32; 2]>,
    /// Where the current drag started (bag coordinates).
    pub drag_origin: Option<[f32; 2]>,
    /// One of this agency's marks being moved or resized with the pan tool.
    pub editing: Option<MarkDrag>,
}

/// A mark taken by the pointer: moved, or (grabbed at a corner of a box or ellipse) resized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MarkDrag {
    pub bag: u64,
    pub id: u64,
    /// Where it was grabbed (bag coordinates).
    pub from: [f32; 2],
    pub resize: bool,
}

impl MarkTool {
    pub fn new(category: &str) -> Self {
        MarkTool {
            tool: Tool::Pan,
            category: category.into(),
            note: String::new(),
            show_others: true,
            bag: None,
            polygon: Vec::new(),
            drag_origin: None,
            editing: None,
        }
    }
}

/// Where a bag lies on screen: converts between its coordinates and screen points.
#[derive(Clone, Copy, Debug)]
pub struct BagFrame {
    pub m: Mapping,
    pub origin: egui::Pos2,
    /// The bag's first line (absolute).
    pub first_line: u64,
    /// Detector channels (rows of the display).
    pub rows: u32,
}

impl BagFrame {
    /// Bag coordinates `[line from the bag's start, channel]` of a screen point.
    pub fn to_bag(&self, p: egui::Pos2) -> [f32; 2] {
        let (line, row) = self.m.to_scan(p.x - self.origin.x, p.y - self.origin.y);
        [(line - self.first_line as f64) as f32, self.rows as f32 - row]
    }

    /// Screen point of bag coordinates.
    pub fn to_screen(&self, b: [f32; 2]) -> egui::Pos2 {
        let line = self.first_line as f64 + b[0] as f64;
        let row = self.rows as f32 - b[1];
        egui::pos2(
            self.origin.x + self.m.x_of_line(line),
            self.origin.y + (row - self.m.top_row) * self.m.scale,
        )
    }
}

/// The shape a drag from `a` to `b` (bag coordinates) makes with `tool`.
pub fn dragged_shape(tool: Tool, a: [f32; 2], b: [f32; 2]) -> Option<Shape> {
    match tool {
        Tool::Rect => Some(Shape::Rect {
            x0: a[0].min(b[0]),
            y0: a[1].min(b[1]),
            x1: a[0].max(b[0]),
            y1: a[1].max(b[1]),
        }),
        Tool::Ellipse => Some(Shape::Ellipse {
            cx: (a[0] + b[0]) / 2.0,
            cy: (a[1] + b[1]) / 2.0,
            rx: (a[0] - b[0]).abs() / 2.0,
            ry: (a[1] - b[1]).abs() / 2.0,
        }),
        Tool::Arrow => Some(Shape::Arrow { from: a, to: b }),
        _ => None,
    }
}

/// Colour of an agency's marks: the first agency red, the second cyan, others amber.
pub fn agency_colour(cfg: &InspectionConfig, agency: &str) -> egui::Color32 {
    let [r, g, b] = cfg.colour(agency);
    egui::Color32::from_rgb(r, g, b)
}

/// Draw one mark with its category label.
pub fn paint_shape(painter: &egui::Painter, f: &BagFrame, shape: &Shape, colour: egui::Color32, label: &str) {
    let stroke = egui::Stroke::new(2.0, colour);
    let anchor = match shape {
        Shape::Rect { x0, y0, x1, y1 } => {
            let r = egui::Rect::from_two_pos(f.to_screen([*x0, *y0]), f.to_screen([*x1, *y1]));
            painter.rect_stroke(r, 0.0, stroke, egui::StrokeKind::Middle);
            r.left_top()
        }
        Shape::Ellipse { cx, cy, rx, ry } => {
            let c = f.to_screen([*cx, *cy]);
            let e = f.to_screen([cx + rx, cy + ry]);
            let radius = egui::vec2((e.x - c.x).abs(), (e.y - c.y).abs());
            painter.add(egui::Shape::ellipse_stroke(c, radius, stroke));
            c - radius
        }
        Shape::Polygon { points } => {
            let pts: Vec<egui::Pos2> = points.iter().map(|p| f.to_screen(*p)).collect();
            painter.add(egui::Shape::closed_line(pts.clone(), stroke));
            pts.iter().copied().fold(pts[0], |a, p| egui::pos2(a.x.min(p.x), a.y.min(p.y)))
        }
        Shape::Arrow { from, to } => {
            let (a, b) = (f.to_screen(*from), f.to_screen(*to));
            painter.arrow(a, b - a, stroke);
            a
        }
        Shape::Text { at } => {
            let p = f.to_screen(*at);
            painter.circle_filled(p, 4.0, colour);
            p
        }
    };
    painter.text(
        anchor + egui::vec2(2.0, -2.0),
        egui::Align2::LEFT_BOTTOM,
        label,
        egui::FontId::proportional(14.0),
        colour,
    );
}

/// The category's name in the screen's language.
pub fn category_label(lang: Lang, cfg: &InspectionConfig, agency: &str, category: &str) -> String {
    cfg.agency(agency)
        .and_then(|a| a.categories.iter().find(|c| c.id == category))
        .map_or(category.to_owned(), |c| lang.tr(&c.label.en, &c.label.zh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::zoom::ImageView;

    #[test]
    fn screen_and_bag_coordinates_round_trip_at_any_zoom() {
        for zoom in [1.0, 3.0, 64.0] {
            let v = ImageView { zoom, right_line: Some(5000.0), top_row: 100.0, mirror: zoom > 2.0 };
            let m = v.mapping(900.0, 700.0, 1536, 6000);
            let f = BagFrame { m, origin: egui::pos2(10.0, 40.0), first_line: 4200, rows: 1536 };
            let p = egui::pos2(400.0, 300.0);
            let b = f.to_bag(p);
            let back = f.to_screen(b);
            assert!((back - p).length() < 1e-2, "{zoom}: {p:?} -> {b:?} -> {back:?}");
        }
    }

    #[test]
    fn drags_make_normalised_shapes() {
        let s = dragged_shape(Tool::Rect, [50.0, 10.0], [20.0, 30.0]).unwrap();
        assert_eq!(s, Shape::Rect { x0: 20.0, y0: 10.0, x1: 50.0, y1: 30.0 });
        let e = dragged_shape(Tool::Ellipse, [0.0, 0.0], [10.0, 4.0]).unwrap();
        assert_eq!(e, Shape::Ellipse { cx: 5.0, cy: 2.0, rx: 5.0, ry: 2.0 });
        assert!(dragged_shape(Tool::Pan, [0.0, 0.0], [1.0, 1.0]).is_none());
    }
}
