//! Zoom and pan of a station's live image: up to 64x, around the cursor, with the live edge
//! followed until the operator pans back in time.
//!
//! Owns: the mapping between screen points and scan coordinates (line, channel row from the
//! top). Pure arithmetic, unit-tested; no drawing.

/// Largest zoom factor (operators expect 64x).
pub const MAX_ZOOM: f32 = 64.0;

/// How one screen looks at the scan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageView {
    /// 1 = the whole detector height fills the image area.
    pub zoom: f32,
    /// Absolute line at the right edge; `None` follows the newest line.
    pub right_line: Option<f64>,
    /// Channel row (from the top of the image) at the top edge.
    pub top_row: f32,
    /// The belt runs the other way: the newest line is at the left edge (the "right line" of
    /// the names below is then at the left).
    pub mirror: bool,
}

impl Default for ImageView {
    fn default() -> Self {
        ImageView { zoom: 1.0, right_line: None, top_row: 0.0, mirror: false }
    }
}

/// Where the scan lies on screen for one frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mapping {
    /// Screen points per scan pixel.
    pub scale: f32,
    /// Absolute line at the right edge of the area.
    pub right_line: f64,
    /// Channel row at the top edge.
    pub top_row: f32,
    pub width: f32,
    pub height: f32,
    /// Newest line at the left edge.
    pub mirror: bool,
}

impl Mapping {
    /// `x` measured from the edge where the newest lines are drawn, mirrored back.
    fn unmirror(&self, x: f32) -> f32 {
        if self.mirror { self.width - x } else { x }
    }

    /// Scan coordinates (line, row) of a point `(x, y)` relative to the area's top-left corner.
    pub fn to_scan(&self, x: f32, y: f32) -> (f64, f32) {
        let x = self.unmirror(x);
        (self.right_line - ((self.width - x) / self.scale) as f64, self.top_row + y / self.scale)
    }

    /// `x` (from the area's left edge) where `line` is drawn.
    pub fn x_of_line(&self, line: f64) -> f32 {
        self.unmirror(self.width - ((self.right_line - line) as f32) * self.scale)
    }

    /// Lines visible across the area.
    pub fn visible_lines(&self) -> f64 {
        (self.width / self.scale) as f64
    }

    pub fn visible_rows(&self) -> f32 {
        self.height / self.scale
    }
}

impl ImageView {
    pub fn is_live(&self) -> bool {
        self.right_line.is_none()
    }

    /// The mapping for an area of `width x height` points showing `rows` channel rows, the newest
    /// line being `head` (one past the last received).
    pub fn mapping(&self, width: f32, height: f32, rows: u32, head: u64) -> Mapping {
        let scale = height.max(1.0) / rows.max(1) as f32 * self.zoom;
        let visible_rows = height / scale;
        let top_row = self.top_row.clamp(0.0, (rows as f32 - visible_rows).max(0.0));
        let right_line = self.right_line.unwrap_or(head as f64).min(head as f64);
        Mapping { scale, right_line, top_row, width, height, mirror: self.mirror }
    }

    /// Zoom by `factor` keeping the scan point under `(x, y)` where it is.
    pub fn zoom_at(&mut self, factor: f32, x: f32, y: f32, m: &Mapping, rows: u32, head: u64) {
        let (line, row) = m.to_scan(x, y);
        let x = m.unmirror(x);
        let zoom = (self.zoom * factor).clamp(1.0, MAX_ZOOM);
        if zoom == self.zoom {
            return;
        }
        self.zoom = zoom;
        let scale = m.height.max(1.0) / rows.max(1) as f32 * zoom;
        let right = line + ((m.width - x) / scale) as f64;
        self.top_row = row - y / scale;
        // Zooming in on the live edge keeps following it; anywhere else the view holds still.
        self.right_line =
            if zoom == 1.0 || (self.is_live() && right >= head as f64) { None } else { Some(right) };
    }

    /// Move the image by `(dx, dy)` screen points (dragging it).
    pub fn pan_by(&mut self, dx: f32, dy: f32, m: &Mapping, head: u64) {
        let dx = if m.mirror { -dx } else { dx };
        let right = m.right_line - (dx / m.scale) as f64;
        self.right_line = if right >= head as f64 { None } else { Some(right) };
        self.top_row = m.top_row - dy / m.scale;
    }

    /// Back to the whole live image (the belt direction stays).
    pub fn reset(&mut self) {
        *self = ImageView { mirror: self.mirror, ..ImageView::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_keeps_the_point_under_the_cursor_and_is_bounded() {
        let mut v = ImageView::default();
        let m = v.mapping(800.0, 600.0, 1536, 10_000);
        assert_eq!(m.top_row, 0.0);
        let before = m.to_scan(300.0, 200.0);
        v.zoom_at(4.0, 300.0, 200.0, &m, 1536, 10_000);
        let m2 = v.mapping(800.0, 600.0, 1536, 10_000);
        let after = m2.to_scan(300.0, 200.0);
        assert!(
            (before.0 - after.0).abs() < 1e-3 && (before.1 - after.1).abs() < 1e-3,
            "{before:?} {after:?}"
        );
        assert_eq!(v.zoom, 4.0);
        for _ in 0..10 {
            let m = v.mapping(800.0, 600.0, 1536, 10_000);
            v.zoom_at(2.0, 10.0, 10.0, &m, 1536, 10_000);
        }
        assert_eq!(v.zoom, MAX_ZOOM);
        v.reset();
        assert_eq!(v, ImageView::default());
    }

    #[test]
    fn a_mirrored_belt_draws_the_newest_line_on_the_left_and_zooms_the_same() {
        let mut v = ImageView { mirror: true, ..Default::default() };
        let m = v.mapping(800.0, 600.0, 1536, 10_000);
        assert!(m.x_of_line(10_000.0).abs() < 1e-3, "newest at the left edge");
        assert!(m.x_of_line(9_999.0) > 0.0);
        let (line, _) = m.to_scan(m.x_of_line(9_500.0), 10.0);
        assert!((line - 9_500.0).abs() < 1e-3);
        let before = m.to_scan(300.0, 200.0);
        v.zoom_at(4.0, 300.0, 200.0, &m, 1536, 10_000);
        let after = v.mapping(800.0, 600.0, 1536, 10_000).to_scan(300.0, 200.0);
        assert!((before.0 - after.0).abs() < 1e-3 && (before.1 - after.1).abs() < 1e-3);
        // dragging towards the old side (right, here) holds the view
        let m = v.mapping(800.0, 600.0, 1536, 10_000);
        v.pan_by(-200.0, 0.0, &m, 10_000);
        assert!(v.right_line.is_some());
        v.reset();
        assert!(v.mirror && v.is_live());
    }

    #[test]
    fn panning_back_holds_the_view_and_panning_to_the_edge_follows_live() {
        let mut v = ImageView { zoom: 2.0, ..Default::default() };
        let m = v.mapping(800.0, 600.0, 1536, 5_000);
        v.pan_by(400.0, 0.0, &m, 5_000); // drag right: older lines come into view
        let held = v.right_line.expect("no longer live");
        assert!(held < 5_000.0);
        // new lines arrive: the view stays where the operator put it
        assert_eq!(v.mapping(800.0, 600.0, 1536, 6_000).right_line, held);
        let m = v.mapping(800.0, 600.0, 1536, 6_000);
        v.pan_by(-10_000.0, 0.0, &m, 6_000);
        assert!(v.is_live(), "dragging past the newest line follows live again");
        // rows clamp inside the detector
        let m = v.mapping(800.0, 600.0, 1536, 6_000);
        v.pan_by(0.0, -1e6, &m, 6_000);
        let m = v.mapping(800.0, 600.0, 1536, 6_000);
        assert!((m.top_row + m.visible_rows() - 1536.0).abs() < 1e-2);
    }
}
