//! The pages, server-rendered (maud: every text escaped): login, the openings waiting, a bag
//! (viewer, image functions, every agency's marks as SVG, decisions, the opening and the
//! findings form of the operator's own agency). Words in Chinese, English or both.
//!
//! Owns: markup only. Must not import: the desk's thread, the archive, egui, wgpu.

use maud::{DOCTYPE, Markup, html};

use super::auth::{Lang, WebSession};
use crate::domain::inspection::{AgencyConfig, BagRecord, InspectionConfig, Opening, Shape};
use crate::domain::view::Preset;

/// Item rows on the findings form.
pub const FINDING_ROWS: usize = 4;
/// Rows the form may carry at most (the record's own limit on kinds of item).
pub const MAX_ROWS: usize = crate::domain::inspection::MAX_FOUND_ITEMS;

/// htmx: swap error answers too (they carry the message for the form).
const HTMX_CONFIG: &str = r#"{"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"[45]..","swap":true,"error":false}]}"#;

fn page(lang: Lang, title: &str, who: Option<&WebSession>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(if lang == Lang::En { "en" } else { "zh-CN" }) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · Twinspect" }
                link rel="stylesheet" href="/static/style.css";
                link rel="icon" type="image/svg+xml" href="/static/icon.svg";
                script src="/static/htmx.min.js" defer {}
            }
            body {
                header {
                    a.home href="/openings" { "Twinspect" }
                    span.title { (title) }
                    nav {
                        @for l in [Lang::Zh, Lang::En, Lang::Both] {
                            a.lang.on[l == lang] href={ "/lang/" (l.code()) } {
                                (match l { Lang::Zh => "中文", Lang::En => "English", Lang::Both => "中/EN" })
                            }
                        }
                        @if let Some(s) = who {
                            span.who { (s.name) " (" (s.operator) ", " (s.agency) ")" }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button { (lang.t("退出", "Log out")) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login page; `error`: why the last try was refused.
pub fn login(lang: Lang, cfg: &InspectionConfig, csrf: &str, error: Option<&str>) -> Markup {
    let body = html! {
        form.login method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            label { (lang.t("工号", "Operator")) input name="id" autocomplete="username" required autofocus; }
            label { (lang.t("密码", "PIN")) input name="pin" type="password" inputmode="numeric" autocomplete="current-password" required; }
            label { (lang.t("单位", "Agency"))
                select name="agency" {
                    @for a in &cfg.agencies { option value=(a.id) { (agency_name(lang, a)) } }
                }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            button { (lang.t("登录", "Log in")) }
        }
    };
    page(lang, &lang.t("开箱查验 登录", "Opening bench: log in"), None, body)
}

pub fn agency_name(lang: Lang, a: &AgencyConfig) -> String {
    lang.t(&a.name.zh, &a.name.en)
}

fn agency_label(lang: Lang, cfg: &InspectionConfig, id: &str) -> String {
    cfg.agency(id).map_or_else(|| id.to_owned(), |a| agency_name(lang, a))
}

/// One bag waiting to be opened (or opened, when `opening.closed`).
pub struct Waiting {
    pub id: i64,
    /// Its name on the hub (`line.node.bag`, as the sorter and the line's labels have it),
    /// when the bag came from the hub.
    pub hub: Option<String>,
    pub item_id: Option<String>,
    pub ended_ms: Option<u64>,
    pub record: BagRecord,
    pub opening: Opening,
}

pub fn openings(lang: Lang, cfg: &InspectionConfig, who: &WebSession, waiting: &[Waiting]) -> Markup {
    let body = html! {
        form.search method="get" action="/bag" {
            label { (lang.t("包号", "Bag number")) input name="id" inputmode="numeric" pattern="[0-9]+" required; }
            button { (lang.t("打开", "Open")) }
        }
        @if waiting.is_empty() {
            p.empty { (lang.t("没有待开箱的包", "No bag is waiting to be opened")) }
        } @else {
            table.openings {
                thead { tr {
                    th { (lang.t("包号", "Bag")) }
                    th { (lang.t("条码/行李牌", "Barcode / tag")) }
                    th { (lang.t("扫描时间", "Scanned")) }
                    th { (lang.t("要求开箱", "Asked by")) }
                    th { (lang.t("原因", "Why")) }
                    th { (lang.t("查验结果", "Findings")) }
                } }
                tbody {
                    @for w in waiting {
                        tr {
                            td { a href={ "/bag/" (w.id) } { "#" (w.id) } @if let Some(h) = &w.hub { " " span.hub { (h) } } }
                            td { (w.item_id.as_deref().unwrap_or("—")) }
                            td { (w.ended_ms.map(crate::files::export::utc).unwrap_or_default()) }
                            td { @for a in &w.opening.asked_by { span.agency { (agency_label(lang, cfg, a)) } " " } }
                            td { @for a in &w.opening.asked_by {
                                @if let Some(d) = w.record.current(a) {
                                    span.why { (d.reason.as_deref().unwrap_or(&d.code)) } " "
                                }
                            } }
                            td { @for (a, f) in &w.opening.results {
                                span.result.done[f.is_some()] { (agency_label(lang, cfg, a)) (if f.is_some() { " ✓" } else { " …" }) } " "
                            } }
                        }
                    }
                }
            }
        }
    };
    page(lang, &lang.t("待开箱", "Openings waiting"), Some(who), body)
}

/// What the bag page shows.
pub struct BagView<'a> {
    pub id: i64,
    pub width: usize,
    pub height: usize,
    pub record: &'a BagRecord,
    pub item_id: Option<&'a str>,
    pub function: Preset,
}

pub fn bag(
    lang: Lang,
    cfg: &InspectionConfig,
    who: &WebSession,
    v: &BagView,
    message: Option<&str>,
) -> Markup {
    let body = html! {
        div.bag {
            div.viewer-box {
                div.functions role="toolbar" {
                    @for p in Preset::ALL.iter().filter(|p| **p != Preset::Vde) {
                        @let (en, zh) = crate::ui::i18n::preset_name(*p);
                        button.fn.on[*p == v.function] type="button" data-fn=(p.name()) { (lang.t(zh, en)) }
                    }
                    span.sep {}
                    button type="button" data-zoom="in" { "+" }
                    button type="button" data-zoom="out" { "−" }
                    button type="button" data-zoom="home" { (lang.t("全图", "Fit")) }
                }
                div.layers {
                    @for a in &cfg.agencies {
                        label.layer style={ "color:" (css_rgb(cfg.colour(&a.id))) } {
                            input type="checkbox" checked data-marks=(a.id);
                            (agency_name(lang, a)) " " (lang.t("标记", "marks"))
                        }
                    }
                }
                div #viewer data-bag=(v.id) data-fn=(v.function.name()) data-width=(v.width) data-height=(v.height) {}
                (marks_svg(cfg, v.record, v.width, v.height))
            }
            aside {
                h2 { "#" (v.id) @if let Some(t) = v.item_id { " · " (t) } }
                (decisions(lang, cfg, v.record))
                (opening_panel(lang, cfg, who, v.id, v.record, message))
            }
        }
        script src="/static/openseadragon.min.js" {}
        script src="/static/bag.js" {}
    };
    page(lang, &lang.t("开箱查验", "Opening"), Some(who), body)
}

fn css_rgb(c: [u8; 3]) -> String {
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

/// Every agency's marks over the image (bag coordinates: `x` along the belt, `y` across from
/// the bottom row), one group per agency, scaled with the image and drawn with a constant width.
pub fn marks_svg(cfg: &InspectionConfig, rec: &BagRecord, w: usize, h: usize) -> Markup {
    let hf = h as f32;
    let pt = |p: [f32; 2]| format!("{:.1},{:.1}", p[0], hf - p[1]);
    html! {
        svg #marks xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (w) " " (h) } preserveAspectRatio="none" {
            @for a in &cfg.agencies {
                g data-agency=(a.id) stroke=(css_rgb(cfg.colour(&a.id))) fill="none" stroke-width="3" {
                    @for m in rec.annotations.iter().filter(|m| m.agency == a.id) {
                        @match &m.shape {
                            Shape::Rect { x0, y0, x1, y1 } => {
                                rect vector-effect="non-scaling-stroke" x=(x0.min(*x1)) y=(hf - y0.max(*y1))
                                    width=((x1 - x0).abs()) height=((y1 - y0).abs()) { title { (m.category) ": " (m.note) } }
                            }
                            Shape::Ellipse { cx, cy, rx, ry } => {
                                ellipse vector-effect="non-scaling-stroke" cx=(cx) cy=(hf - cy) rx=(rx.abs()) ry=(ry.abs()) { title { (m.category) ": " (m.note) } }
                            }
                            Shape::Polygon { points } => {
                                polygon vector-effect="non-scaling-stroke" points=(points.iter().map(|p| pt(*p)).collect::<Vec<_>>().join(" ")) { title { (m.category) ": " (m.note) } }
                            }
                            Shape::Arrow { from, to } => {
                                line vector-effect="non-scaling-stroke" x1=(from[0]) y1=(hf - from[1]) x2=(to[0]) y2=(hf - to[1]) { title { (m.category) ": " (m.note) } }
                                circle vector-effect="non-scaling-stroke" cx=(to[0]) cy=(hf - to[1]) r="6" {}
                            }
                            Shape::Text { at } => {
                                circle vector-effect="non-scaling-stroke" cx=(at[0]) cy=(hf - at[1]) r="8" { title { (m.category) ": " (m.note) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn decisions(lang: Lang, cfg: &InspectionConfig, rec: &BagRecord) -> Markup {
    html! {
        section.decisions {
            h3 { (lang.t("判图结论", "Decisions")) }
            ul {
                @for a in &cfg.agencies {
                    li style={ "border-color:" (css_rgb(cfg.colour(&a.id))) } {
                        b { (agency_name(lang, a)) } ": "
                        @match rec.current(&a.id) {
                            Some(d) => {
                                (a.decision(&d.code).map_or(d.code.clone(), |c| lang.t(&c.label.zh, &c.label.en)))
                                " · " (d.operator) " · " (crate::files::export::utc(d.at_ms))
                                @if let Some(r) = &d.reason { br; i { (r) } }
                            }
                            None => { (lang.t("未判", "not decided")) }
                        }
                        @let n = rec.annotations.iter().filter(|m| m.agency == a.id).count();
                        @if n > 0 { br; small { (n) " " (lang.t("处标记", "marks")) } }
                    }
                }
            }
        }
    }
}

/// The opening: who asked, each agency's findings, and the form of the operator's agency.
pub fn opening_panel(
    lang: Lang,
    cfg: &InspectionConfig,
    who: &WebSession,
    id: i64,
    rec: &BagRecord,
    message: Option<&str>,
) -> Markup {
    let opening = rec.opening(cfg);
    let mine = cfg.agency(&who.agency);
    html! {
        section #opening {
            h3 { (lang.t("开箱", "Opening")) }
            @match &opening {
                None => p { (lang.t("没有单位要求开箱", "No agency has asked to open this bag")) },
                Some(o) => {
                    p.state.closed[o.closed] {
                        @if o.closed { (lang.t("开箱已完成：各单位均已记录", "Closed: every agency has recorded its findings")) }
                        @else { (lang.t("等待查验结果", "Waiting for findings")) }
                    }
                    p { (lang.t("要求开箱", "Asked by")) ": "
                        @for a in &o.asked_by { span.agency { (agency_label(lang, cfg, a)) } " " } }
                    ul.results {
                        @for (a, f) in &o.results {
                            li { b { (agency_label(lang, cfg, a)) } ": "
                                @match f {
                                    None => i { (lang.t("未记录", "not recorded")) },
                                    Some(f) => {
                                        @if f.items.is_empty() { (lang.t("未发现", "nothing found")) }
                                        @for it in &f.items {
                                            span.item { (category_label(lang, cfg.agency(a), &it.category)) " × " (it.count)
                                                @if !it.note.is_empty() { " (" (it.note) ")" } } " "
                                        }
                                        @if let Some(t) = &f.treatment { br; (lang.t("处理", "Treatment")) ": " (t) }
                                        br; small { (f.operator) " · " (crate::files::export::utc(f.at_ms)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !rec.photos.is_empty() {
                div.photos {
                    @for p in &rec.photos {
                        a href={ "/bag/" (id) "/photo/" (p.sha256) } target="_blank" rel="noopener" {
                            img src={ "/bag/" (id) "/photo/" (p.sha256) } loading="lazy"
                                alt=(format!("{} {} · {}", lang.t("照片", "photo"), p.operator, crate::files::export::utc(p.at_ms)));
                        }
                    }
                }
            }
            @if let Some(m) = message { p.message role="status" { (m) } }
            @if let (Some(_), Some(_)) = (&opening, mine) {
                form.photo method="post" action={ "/bag/" (id) "/photos" } enctype="multipart/form-data"
                    hx-post={ "/bag/" (id) "/photos" } hx-encoding="multipart/form-data" hx-target="#opening" hx-swap="outerHTML" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label { (lang.t("拍照", "Photo"))
                        input type="file" name="photo" accept="image/jpeg,image/png" capture="environment" required; }
                    button { (lang.t("上传照片", "Add photo")) }
                }
            }
            @if let (Some(_), Some(a)) = (&opening, mine) {
                // Once recorded, the form holds what was recorded: sending it again corrects
                // it, and an untouched form changes nothing (an empty one would say "nothing
                // found" over the items).
                @let prior = rec.findings_of(&a.id);
                @let rows = FINDING_ROWS.max(prior.map_or(0, |f| f.items.len() + 1)).min(MAX_ROWS);
                form.findings method="post" action={ "/bag/" (id) "/findings" }
                    hx-post={ "/bag/" (id) "/findings" } hx-target="#opening" hx-swap="outerHTML" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    h4 { (agency_name(lang, a)) " "
                        @if prior.is_some() { (lang.t("更正查验结果", "findings: correct them")) }
                        @else { (lang.t("查验结果", "findings")) } }
                    @for i in 0..rows {
                        @let it = prior.and_then(|f| f.items.get(i));
                        div.row {
                            select name={ "cat" (i) } {
                                option value="" { "—" }
                                @for c in &a.categories {
                                    option value=(c.id) selected[it.is_some_and(|it| it.category == c.id)] {
                                        (lang.t(&c.label.zh, &c.label.en)) }
                                }
                            }
                            input name={ "count" (i) } type="number" min="1" max="9999" value=(it.map_or(1, |it| it.count));
                            input name={ "note" (i) } maxlength="2000" placeholder=(lang.t("说明", "note"))
                                value=(it.map_or("", |it| it.note.as_str()));
                        }
                    }
                    label { (lang.t("处理", "Treatment"))
                        input name="treatment" maxlength="2000"
                            value=(prior.and_then(|f| f.treatment.as_deref()).unwrap_or("")); }
                    p.hint { (lang.t("不选物品即为“未发现”", "No item chosen: nothing found")) }
                    button { @if prior.is_some() { (lang.t("更正结果", "Correct findings")) }
                        @else { (lang.t("记录结果", "Record findings")) } }
                }
            }
        }
    }
}

fn category_label(lang: Lang, a: Option<&AgencyConfig>, id: &str) -> String {
    a.and_then(|a| a.categories.iter().find(|c| c.id == id))
        .map_or_else(|| id.to_owned(), |c| lang.t(&c.label.zh, &c.label.en))
}

/// A page that says what went wrong.
pub fn problem(lang: Lang, who: Option<&WebSession>, what: &str) -> Markup {
    page(
        lang,
        &lang.t("出错", "Problem"),
        who,
        html! { p.error role="alert" { (what) } p { a href="/openings" { (lang.t("返回", "Back")) } } },
    )
}
