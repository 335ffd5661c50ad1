//! The UI's two languages, switchable per screen: Chinese, English, or both side by side.
//!
//! Owns: [`Lang`], [`Lang::tr`] and the names of the console functions. Every visible string of
//! the UI goes through `tr` with both texts written at the call site.

use crate::domain::view::Preset;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// Both languages ("Log in 登录"): the default, for mixed teams.
    #[default]
    Both,
    Zh,
    En,
}

impl Lang {
    /// The text in this language.
    pub fn tr(self, en: &str, zh: &str) -> String {
        match self {
            Lang::Both => format!("{en} {zh}"),
            Lang::Zh => zh.to_owned(),
            Lang::En => en.to_owned(),
        }
    }

    /// The text in this language, with both on two lines (a button's label where width is short:
    /// the toolbar keeps to one row at 1280 pixels).
    pub fn stacked(self, en: &str, zh: &str) -> String {
        match self {
            Lang::Both => format!("{en}\n{zh}"),
            _ => self.tr(en, zh),
        }
    }

    /// The next language for the switch button.
    pub fn next(self) -> Lang {
        match self {
            Lang::Both => Lang::Zh,
            Lang::Zh => Lang::En,
            Lang::En => Lang::Both,
        }
    }

    /// Label of the switch button (what the screen shows now).
    pub fn switch_label(self) -> &'static str {
        match self {
            Lang::Both => "中/EN",
            Lang::Zh => "中文",
            Lang::En => "EN",
        }
    }
}

/// Console function names as shown on the toolbar.
pub fn preset_name(p: Preset) -> (&'static str, &'static str) {
    match p {
        Preset::Standard => ("STD", "标准"),
        Preset::Hp => ("HP", "高穿"),
        Preset::Lp => ("LP", "低穿"),
        Preset::Os => ("OS", "有机物"),
        Preset::Is => ("IS", "无机物"),
        Preset::Metal => ("Metal", "金属"),
        Preset::Edge => ("SEN", "超级增强"),
        Preset::Local => ("Local", "局部增强"),
        Preset::Negative => ("Neg", "反色"),
        Preset::Bw => ("B/W", "黑白"),
        Preset::Pseudo => ("Pseudo", "伪彩"),
        Preset::Vde => ("VDE", "可变密度"),
    }
}

/// The belt's state in words (English, Chinese).
pub fn belt_name(b: crate::source::Belt) -> (&'static str, &'static str) {
    use crate::source::Belt;
    match b {
        Belt::Forward => ("belt forward", "传送带正转"),
        Belt::Stop => ("belt stopped", "传送带停止"),
        Belt::Reverse => ("belt reversing", "传送带反转"),
    }
}

/// The symbol on the belt's console key.
pub fn belt_symbol(b: crate::source::Belt) -> &'static str {
    use crate::source::Belt;
    match b {
        Belt::Forward => "▶",
        Belt::Stop => "■",
        Belt::Reverse => "◀",
    }
}

/// The belt command in Chinese (停止, 正转, 反转).
pub fn belt_verb_zh(b: crate::source::Belt) -> &'static str {
    use crate::source::Belt;
    match b {
        Belt::Forward => "正转",
        Belt::Stop => "停止",
        Belt::Reverse => "反转",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_is_reachable_and_texts_differ() {
        let mut l = Lang::default();
        let mut seen = vec![];
        for _ in 0..3 {
            seen.push(l.tr("Release", "放行"));
            l = l.next();
        }
        assert_eq!(seen, vec!["Release 放行", "放行", "Release"]);
        assert_eq!(l, Lang::Both);
        for p in Preset::ALL {
            let (en, zh) = preset_name(p);
            assert!(!en.is_empty() && zh.chars().all(|c| !c.is_ascii()), "{p:?}");
        }
    }
}
