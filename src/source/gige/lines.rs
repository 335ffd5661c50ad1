//! Dual-energy lines out of GigE Vision blocks, as the scanner profile lays them out: low and high
//! as alternating rows, or as the two halves of one row. Lines whose bytes sit in packets that
//! never arrived are left out, so their numbers become a gap the workstation shows as missing.
//!
//! Owns: [`DualLayout`], [`block_lines`]. Must not import: egui, wgpu.

use super::gvsp::{Block, MONO16};
use crate::domain::scan::{LineKind, RawLine};

/// How a detector puts its two energies into an image block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DualLayout {
    /// Row 2k is line k's low energy, row 2k+1 its high energy (width = channels).
    AlternatingRows,
    /// Each row is one line: `channels` low samples then `channels` high (width = 2 x channels).
    HalvesOfRow,
}

impl DualLayout {
    /// Image width and rows for `lines` lines of `channels`.
    pub fn image_size(self, channels: u32, lines: u32) -> (u32, u32) {
        match self {
            DualLayout::AlternatingRows => (channels, 2 * lines),
            DualLayout::HalvesOfRow => (2 * channels, lines),
        }
    }
}

/// The lines of one block, numbered from `first_seq`; returns the lines and how many were left out.
pub fn block_lines(
    block: &Block,
    layout: DualLayout,
    channels: usize,
    first_seq: u64,
) -> Result<(Vec<RawLine>, usize), String> {
    let l = &block.leader;
    if l.pixel_format != MONO16 {
        return Err(format!("pixel format {:#010x}: a dual-energy detector streams Mono16", l.pixel_format));
    }
    let (w, h) = (l.width as usize, l.height as usize);
    let (want_w, rows_per_line) = match layout {
        DualLayout::AlternatingRows => (channels, 2),
        DualLayout::HalvesOfRow => (2 * channels, 1),
    };
    if w != want_w {
        return Err(format!("block is {w} pixels wide; {channels} channels as {layout:?} need {want_w}"));
    }
    // The trailer says how many rows were really delivered (a line-scan device may end early);
    // area-scan devices such as Aravis's fake camera send 0 there, meaning "as the leader said".
    let rows = block.trailer_height.filter(|t| *t > 0).map_or(h, |t| (t as usize).min(h));
    let row_bytes = 2 * w;
    let sample = |i: usize| u16::from_le_bytes([block.data[2 * i], block.data[2 * i + 1]]);
    let mut out = Vec::with_capacity(rows / rows_per_line);
    let mut skipped = 0;
    for k in 0..rows / rows_per_line {
        let start = k * rows_per_line * row_bytes;
        if !block.bytes_present(start..start + rows_per_line * row_bytes) {
            skipped += 1;
            continue;
        }
        let base = start / 2;
        let (low, high) = match layout {
            DualLayout::AlternatingRows => (
                (0..channels).map(|c| sample(base + c)).collect(),
                (0..channels).map(|c| sample(base + w + c)).collect(),
            ),
            DualLayout::HalvesOfRow => (
                (0..channels).map(|c| sample(base + c)).collect(),
                (0..channels).map(|c| sample(base + channels + c)).collect(),
            ),
        };
        out.push(RawLine { seq: first_seq + k as u64, kind: LineKind::Scan, low, high });
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::gige::gvsp::{Leader, PAYLOAD_IMAGE};

    fn block(w: u32, h: u32, chunk: usize, missing: Vec<u32>) -> Block {
        let data: Vec<u8> = (0..(w * h) as usize).flat_map(|i| (i as u16).to_le_bytes()).collect();
        Block {
            id: 3,
            leader: Leader {
                payload_type: PAYLOAD_IMAGE,
                timestamp: 0,
                pixel_format: MONO16,
                width: w,
                height: h,
                offset_x: 0,
                offset_y: 0,
            },
            data,
            missing_packets: missing,
            trailer_height: Some(h),
            chunk,
        }
    }

    #[test]
    fn both_layouts_give_the_same_samples_per_line() {
        let (lines, skipped) =
            block_lines(&block(4, 6, 1000, vec![]), DualLayout::AlternatingRows, 4, 30).unwrap();
        assert_eq!((lines.len(), skipped), (3, 0));
        assert_eq!(lines[1].seq, 31);
        assert_eq!(lines[1].low, vec![8, 9, 10, 11]);
        assert_eq!(lines[1].high, vec![12, 13, 14, 15]);
        let (lines, _) = block_lines(&block(8, 3, 1000, vec![]), DualLayout::HalvesOfRow, 4, 0).unwrap();
        assert_eq!(lines[1].low, vec![8, 9, 10, 11]);
        assert_eq!(lines[1].high, vec![12, 13, 14, 15]);
    }

    #[test]
    fn lines_in_lost_packets_are_left_out_and_counted() {
        // 16 bytes a line (alternating rows of 4 channels), 10 bytes a packet: packet 4 holds
        // bytes 30..40, which are lines 1 (16..32) and 2 (32..48).
        let (lines, skipped) =
            block_lines(&block(4, 8, 10, vec![4]), DualLayout::AlternatingRows, 4, 0).unwrap();
        assert_eq!(skipped, 2);
        assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![0, 3]);
        // the trailer may deliver fewer rows than the leader announced
        let mut b = block(4, 8, 1000, vec![]);
        b.trailer_height = Some(4);
        assert_eq!(block_lines(&b, DualLayout::AlternatingRows, 4, 0).unwrap().0.len(), 2);
        b.trailer_height = Some(0); // "as the leader said" (Aravis's fake camera)
        assert_eq!(block_lines(&b, DualLayout::AlternatingRows, 4, 0).unwrap().0.len(), 4);
        assert!(block_lines(&b, DualLayout::AlternatingRows, 5, 0).unwrap_err().contains("wide"));
        b.leader.pixel_format = 0x0108_0001;
        assert!(block_lines(&b, DualLayout::AlternatingRows, 4, 0).unwrap_err().contains("Mono16"));
    }
}
