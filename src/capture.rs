//! Cutting the assembled line stream into whole bags: each bag's raw lines (lost lines kept in
//! place and listed), with the calibration in force when it ended. Used by `twinspect capture`
//! today and by the archive later.
//!
//! Owns: [`BagCollector`] and [`CapturedBag`]. Knows nothing of files, the GPU or the window.
//!
//! Must not import: egui, wgpu.

use std::collections::VecDeque;

use crate::assemble::{BagSpan, Batch};
use crate::domain::calib::Calibration;
use crate::domain::scan::RawFrame;

/// A bag as captured.
#[derive(Clone, Debug)]
pub struct CapturedBag {
    pub span: BagSpan,
    pub frame: RawFrame,
    /// Rows of `frame` that were lost before reaching us (placeholders, not image).
    pub missing: Vec<usize>,
    /// The bag began before the oldest line still held (longer than the collector's limit).
    pub truncated: bool,
    pub calibration: Calibration,
}

/// Holds recent lines until the bags they belong to are complete.
pub struct BagCollector {
    channels: usize,
    max_lines: usize,
    /// Absolute index (the assembler's `lines_shown` numbering) of `lines[0]`.
    base: u64,
    lines: VecDeque<(Vec<u16>, Vec<u16>, bool)>,
    open: Vec<BagSpan>,
}

impl BagCollector {
    /// `max_lines`: the longest bag kept whole (older lines are let go).
    pub fn new(channels: usize, max_lines: usize) -> Self {
        BagCollector {
            channels,
            max_lines: max_lines.max(1),
            base: 0,
            lines: VecDeque::new(),
            open: Vec::new(),
        }
    }

    fn end(&self) -> u64 {
        self.base + self.lines.len() as u64
    }

    /// Take a batch from the assembler; returns the bags it completed.
    pub fn push(&mut self, batch: &Batch, calibration: Option<&Calibration>) -> Vec<CapturedBag> {
        let n = self.channels;
        for i in 0..batch.lines {
            let r = i * n..(i + 1) * n;
            self.lines.push_back((batch.low[r.clone()].to_vec(), batch.high[r].to_vec(), batch.missing[i]));
            if self.lines.len() > self.max_lines {
                self.lines.pop_front();
                self.base += 1;
            }
        }
        for span in &batch.bags {
            self.open.retain(|b| b.bag != span.bag);
            self.open.push(span.clone());
        }
        let mut done = Vec::new();
        let end = self.end();
        let mut still_open = Vec::new();
        for span in std::mem::take(&mut self.open) {
            // The calibration in force when the bag ended, when it ended in this batch.
            let at_end = batch.ended.iter().find(|(b, _)| *b == span.bag).map(|(_, c)| c);
            match (span.end_line, at_end.or(calibration)) {
                (Some(e), Some(cal)) if e <= end => {
                    let from = span.first_line.max(self.base);
                    let rows: Vec<&(Vec<u16>, Vec<u16>, bool)> = self
                        .lines
                        .range((from - self.base) as usize..(e.max(from) - self.base) as usize)
                        .collect();
                    let mut frame = RawFrame::zeros(rows.len(), n);
                    let mut missing = Vec::new();
                    for (k, (lo, hi, m)) in rows.iter().enumerate() {
                        frame.low.row_mut(k).assign(&ndarray::ArrayView1::from(lo.as_slice()));
                        frame.high.row_mut(k).assign(&ndarray::ArrayView1::from(hi.as_slice()));
                        if *m {
                            missing.push(k);
                        }
                    }
                    done.push(CapturedBag {
                        truncated: span.first_line < self.base,
                        span,
                        frame,
                        missing,
                        calibration: cal.clone(),
                    });
                }
                _ => still_open.push(span),
            }
        }
        self.open = still_open;
        // Keep what open bags still need (bounded), and a little lookback for bags that begin
        // a few lines back (segmentation's margin).
        let keep_from = self.open.iter().map(|b| b.first_line).min().unwrap_or(end.saturating_sub(256));
        while self.base < keep_from {
            if self.lines.pop_front().is_none() {
                break;
            }
            self.base += 1;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scan::{LineKind, RawLine};

    fn calib() -> Calibration {
        let d = RawLine { seq: 0, kind: LineKind::Dark, low: vec![100; 2], high: vec![100; 2] };
        let a = RawLine { seq: 0, kind: LineKind::Air, low: vec![40000; 2], high: vec![40000; 2] };
        Calibration::from_lines(&[&d], &[&a], 65535).unwrap()
    }

    fn batch(values: std::ops::Range<u16>, missing_at: Option<u16>, bags: Vec<BagSpan>) -> Batch {
        let mut b = Batch::default();
        for v in values {
            b.low.extend([v, v]);
            b.high.extend([v + 1, v + 1]);
            b.missing.push(Some(v) == missing_at);
            b.lines += 1;
        }
        b.bags = bags;
        b
    }

    fn span(bag: u64, first: u64, end: Option<u64>) -> BagSpan {
        BagSpan { bag, item_id: Some(format!("T{bag}")), first_line: first, end_line: end }
    }

    #[test]
    fn bags_come_out_whole_with_their_lost_lines_listed() {
        let mut c = BagCollector::new(2, 1000);
        let cal = calib();
        assert!(c.push(&batch(0..10, None, vec![span(1, 3, None)]), Some(&cal)).is_empty());
        let out = c.push(&batch(10..20, Some(12), vec![span(1, 3, Some(15)), span(2, 16, None)]), Some(&cal));
        assert_eq!(out.len(), 1);
        let b = &out[0];
        assert_eq!(b.frame.lines(), 12);
        assert_eq!(b.frame.low[[0, 0]], 3);
        assert_eq!(b.frame.high[[11, 1]], 15);
        assert_eq!(b.missing, vec![9], "line 12 is row 9 of a bag starting at line 3");
        assert!(!b.truncated);
        let out = c.push(&batch(20..30, None, vec![span(2, 16, Some(30))]), Some(&cal));
        assert_eq!(out[0].frame.lines(), 14);
        assert_eq!(out[0].span.item_id.as_deref(), Some("T2"));
    }

    #[test]
    fn a_bag_longer_than_the_limit_is_kept_in_part_and_marked() {
        let mut c = BagCollector::new(2, 8);
        let cal = calib();
        c.push(&batch(0..10, None, vec![span(1, 0, None)]), Some(&cal));
        let out = c.push(&batch(10..20, None, vec![span(1, 0, Some(20))]), Some(&cal));
        assert_eq!(out[0].frame.lines(), 8, "memory is bounded");
        assert!(out[0].truncated);
        assert_eq!(out[0].frame.low[[7, 0]], 19);
    }
}
