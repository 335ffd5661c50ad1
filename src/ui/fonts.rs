//! Fonts: egui's defaults plus a CJK font from the system for the Chinese UI.
//!
//! The workstation uses Noto Sans CJK SC (SIL Open Font License 1.1; Debian `fonts-noto-cjk`,
//! installed by the README's set-up) and falls back to WenQuanYi if that is what the machine has.
//! Owns: finding and registering the font. Reads font files only.

use eframe::egui;

/// Candidate CJK fonts: (path, face index in the collection).
const CJK_FONTS: &[(&str, u32)] = &[
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2), // face 2: Simplified Chinese
    ("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
];

/// Register a CJK font as a fallback for both families; returns its path, or `None` (then
/// Chinese shows as boxes, and the status bar says so).
pub fn install_cjk(ctx: &egui::Context) -> Option<&'static str> {
    let (path, index) = cjk_font()?;
    let bytes = std::fs::read(path).ok()?;
    let mut defs = egui::FontDefinitions::default();
    let mut data = egui::FontData::from_owned(bytes);
    data.index = *index;
    defs.font_data.insert("cjk".into(), std::sync::Arc::new(data));
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        defs.families.entry(family).or_default().push("cjk".into());
    }
    ctx.set_fonts(defs);
    Some(path)
}

/// The CJK font this machine has (path, face index), if any.
pub fn cjk_font() -> Option<&'static (&'static str, u32)> {
    CJK_FONTS.iter().find(|(p, _)| std::path::Path::new(p).exists())
}
