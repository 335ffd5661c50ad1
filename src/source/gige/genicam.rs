//! GenICam GenApi, the part a line-scan detector needs: the device's XML (plain, or zipped as
//! many cameras store it) read into a node map, and features read and written through a register
//! [`Port`]: `Integer`, `IntReg`, `MaskedIntReg` (and `StructReg` entries), `Enumeration`,
//! `Command`, `Boolean`, `StringReg`, `IntSwissKnife` (integer formulas), `Float`, `FloatReg`
//! (IEEE 754, 4 or 8 bytes), `Converter` and `IntConverter` (FormulaTo/FormulaFrom) and
//! `SwissKnife` (float formulas, GenApi's functions). Selectors (`pSelected`, and registers
//! placed by `pIndex`); access modes (`AccessMode`, `ImposedAccessMode`, `pIsLocked`,
//! `pIsAvailable`, `pIsImplemented`); a register cache when asked for (`Cachable`,
//! `PollingTime`, `pInvalidator`). Other node kinds are known by name and refused with what
//! they are when used.
//!
//! Hostile XML is refused, never obeyed: no DTD (so no entity expansion), at most
//! [`MAX_XML_BYTES`] after unzipping, references at most [`MAX_DEPTH`] deep (so a cycle is an
//! error, not a hang), registers of sane lengths, formulas of bounded size.
//!
//! Owns: [`NodeMap`], [`Port`], [`GenicamError`], the formula evaluator. No I/O of its own (the
//! [`Port`] does it), so the fuzz target includes this file by path.
//!
//! Must not import: egui, wgpu, tokio, the rest of the crate.

use std::collections::HashMap;
use std::io::Read;

/// Largest XML accepted (after unzipping).
pub const MAX_XML_BYTES: usize = 16 << 20;
/// Deepest chain of references (pValue, pMax, pVariable, ...) followed.
pub const MAX_DEPTH: u32 = 32;
const MAX_FORMULA: usize = 4096;
const MAX_STRING_REG: usize = 4096;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenicamError {
    #[error("GenICam XML: {0}")]
    Xml(String),
    #[error("the device's XML has no feature `{0}`")]
    Missing(String),
    #[error("feature `{name}` is a {kind}, which is not supported here")]
    Unsupported { name: String, kind: String },
    #[error("feature `{0}` is read-only")]
    ReadOnly(String),
    #[error("{name} = {value} is out of range (min {min}, max {max}, increment {inc})")]
    Range { name: String, value: i64, min: i64, max: i64, inc: i64 },
    #[error("{name} = {value} is out of range (min {min}, max {max}{})", if *inc > 0.0 { format!(", increment {inc}") } else { String::new() })]
    FloatRange { name: String, value: f64, min: f64, max: f64, inc: f64 },
    #[error("feature `{name}` is locked ({by} is set: stop acquiring first)")]
    Locked { name: String, by: String },
    #[error("feature `{name}` is not available now ({by} says so)")]
    NotAvailable { name: String, by: String },
    #[error("{name} has no entry `{entry}` (it has: {entries})")]
    NoEntry { name: String, entry: String, entries: String },
    #[error("{name} reads {value}, which is none of its entries")]
    UnknownValue { name: String, value: i64 },
    #[error("feature `{0}`: references nest deeper than 32 (a cycle?)")]
    Depth(String),
    #[error("formula of `{name}`: {msg}")]
    Formula { name: String, msg: String },
    #[error("register of `{name}`: {msg}")]
    Register { name: String, msg: String },
    #[error("register of `{name}` at {addr:#x}: {source}")]
    Port { name: String, addr: i64, source: PortError },
}

/// Why a [`Port`] could not read or write the device's memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("the address is beyond the port's address space")]
    Address,
    #[error("{len} bytes: the port moves whole 32-bit words")]
    Unaligned { len: usize },
    #[error("{got} bytes came back for {want}")]
    Short { got: usize, want: usize },
    /// The device answered with an error status (its words).
    #[error("the device refused: {0}")]
    Refused(String),
    /// No answer, or the link failed (the transport's words).
    #[error("{0}")]
    Link(String),
}

type R<T> = Result<T, GenicamError>;

/// Where register bytes come from: the device's memory as the XML addresses it (bytes in the
/// device's order; the node says how to read them).
pub trait Port {
    fn read(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, PortError>;
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), PortError>;
}

/// An integer that is either written in the XML or read from another node.
#[derive(Clone, Debug, PartialEq)]
enum IVal {
    Const(i64),
    Node(String),
}

/// A float that is either written in the XML or read from another node.
#[derive(Clone, Debug, PartialEq)]
enum FVal {
    Const(f64),
    Node(String),
}

#[derive(Clone, Debug, PartialEq)]
enum AddrPart {
    Const(i64),
    Node(String),
    /// `pIndex`: the node's value times the offset.
    Index {
        node: String,
        offset: IVal,
    },
}

#[derive(Clone, Debug, PartialEq)]
struct Reg {
    address: Vec<AddrPart>,
    length: IVal,
    writable: bool,
    big_endian: bool,
    cachable: Cachable,
    /// `PollingTime`: a cached value older than this is read again (ms).
    polling_ms: Option<u64>,
}

/// A register's `Cachable`: whether a value read (or written) may be answered from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Cachable {
    /// Never cached (status registers the device changes by itself).
    NoCache,
    /// A value written is the register's value (GenApi's default).
    #[default]
    WriteThrough,
    /// A value written is read back from the device next time (it may have adjusted it).
    WriteAround,
}

/// Register values read from the device, when caching is on ([`NodeMap::set_caching`]).
#[derive(Debug, Default)]
struct Cache {
    /// By (address, length): the register node that read it, its bytes, when.
    entries: HashMap<(u64, usize), (String, Vec<u8>, std::time::Instant)>,
}

impl Cache {
    fn forget_overlapping(&mut self, addr: u64, len: usize) {
        let end = addr.saturating_add(len as u64);
        self.entries.retain(|(a, l), _| a.saturating_add(*l as u64) <= addr || *a >= end);
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Integer {
        value: IVal,
        min: Option<IVal>,
        max: Option<IVal>,
        inc: Option<IVal>,
    },
    IntReg {
        reg: Reg,
        signed: bool,
    },
    MaskedIntReg {
        reg: Reg,
        lsb: u32,
        msb: u32,
        signed: bool,
    },
    StringReg {
        reg: Reg,
    },
    Enumeration {
        entries: Vec<(String, i64)>,
        value: IVal,
    },
    Command {
        value: IVal,
        command: IVal,
    },
    Boolean {
        value: IVal,
        on: i64,
        off: i64,
    },
    IntSwissKnife {
        vars: Vec<(String, String)>,
        consts: Vec<(String, i64)>,
        formula: Result<Expr, String>,
    },
    Float {
        value: FVal,
        min: Option<FVal>,
        max: Option<FVal>,
        inc: Option<FVal>,
        unit: String,
    },
    /// An IEEE 754 register of 4 or 8 bytes.
    FloatReg {
        reg: Reg,
    },
    /// `Converter` (float) and `IntConverter`: the feature's value FROM is written to its
    /// `pValue` as `FormulaTo` of FROM, and read back as `FormulaFrom` of TO (the pValue's).
    Converter {
        vars: Vec<(String, String)>,
        consts: Vec<(String, f64)>,
        to: Fx,
        from: Fx,
        value: String,
        int: bool,
    },
    /// A float formula (read only).
    SwissKnife {
        vars: Vec<(String, String)>,
        consts: Vec<(String, f64)>,
        formula: Fx,
    },
    Other(String),
}

type Fx = Result<Expr, String>;

/// A device's features, from its GenICam XML.
#[derive(Debug, Default)]
pub struct NodeMap {
    nodes: HashMap<String, Node>,
    pub model: String,
    pub vendor: String,
    /// Values of `Integer` nodes with a fixed `<Value>` the host has set.
    local: HashMap<String, i64>,
    /// Values of `Float` nodes with a fixed `<Value>` the host has set.
    local_f: HashMap<String, f64>,
    /// What a feature's access depends on (pIsLocked, pIsAvailable, pIsImplemented,
    /// ImposedAccessMode), for the features that say.
    guards: HashMap<String, Guard>,
    /// Selectors and the features they select (`pSelected`), in the XML's order.
    selected: Vec<(String, Vec<String>)>,
    /// The registers whose cached values a write to a node makes stale (`pInvalidator`), by
    /// the node written.
    invalidates: HashMap<String, Vec<String>>,
    /// Whether register values are kept (off unless asked for, as in Aravis).
    caching: bool,
    cache: std::sync::Mutex<Cache>,
}

/// A feature's access conditions, each a node read when the feature is used.
#[derive(Clone, Debug, Default, PartialEq)]
struct Guard {
    /// Writes are refused while this node reads non-zero (TLParamsLocked while acquiring).
    locked: Option<String>,
    /// Reads and writes are refused while this node reads zero.
    available: Option<String>,
    implemented: Option<String>,
    /// `ImposedAccessMode` RO: never written from here.
    read_only: bool,
}

/// One feature as a listing shows it: its kind, its value in words, its range or entries.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureInfo {
    pub name: String,
    pub kind: &'static str,
    /// The value as read (an error's words where it cannot be read).
    pub value: Result<String, String>,
    /// `min .. max`, `{A, B}` or empty.
    pub range: String,
}

/// Parse `0x1F`, `31`, `-4`, `+4` (GenICam writes both hex and decimal).
fn int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()? as i64
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

fn text<'a>(n: roxmltree::Node<'a, '_>) -> &'a str {
    n.text().unwrap_or("").trim()
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.is_element() && c.tag_name().name() == tag)
}

/// `<Tag>` as a constant or `<pTag>` as a reference.
fn ival(n: roxmltree::Node<'_, '_>, tag: &str) -> R<Option<IVal>> {
    if let Some(c) = child(n, tag) {
        let v = int(text(c))
            .ok_or_else(|| GenicamError::Xml(format!("<{tag}>{}</{tag}> is no integer", text(c))))?;
        return Ok(Some(IVal::Const(v)));
    }
    Ok(child(n, &format!("p{tag}")).map(|c| IVal::Node(text(c).to_string())))
}

/// The register part of an `IntReg`-like element (`base` supplies a `StructReg`'s address etc.).
fn reg(n: roxmltree::Node<'_, '_>, base: Option<roxmltree::Node<'_, '_>>) -> R<Reg> {
    let src = base.unwrap_or(n);
    let mut address = Vec::new();
    for c in src.children().filter(|c| c.is_element()) {
        match c.tag_name().name() {
            "Address" => address.push(AddrPart::Const(
                int(text(c)).ok_or_else(|| GenicamError::Xml(format!("address `{}`", text(c))))?,
            )),
            "pAddress" => address.push(AddrPart::Node(text(c).to_string())),
            "pIndex" => {
                let offset = match (c.attribute("Offset"), c.attribute("pOffset")) {
                    (Some(o), _) => {
                        IVal::Const(int(o).ok_or_else(|| GenicamError::Xml(format!("offset `{o}`")))?)
                    }
                    (None, Some(p)) => IVal::Node(p.to_string()),
                    (None, None) => IVal::Const(1),
                };
                address.push(AddrPart::Index { node: text(c).to_string(), offset });
            }
            _ => {}
        }
    }
    let length = ival(src, "Length")?.unwrap_or(IVal::Const(4));
    let access = child(n, "AccessMode").or_else(|| child(src, "AccessMode")).map(text).unwrap_or("RW");
    let big_endian = child(src, "Endianess").map(text) == Some("BigEndian");
    let cachable = match child(n, "Cachable").or_else(|| child(src, "Cachable")).map(text) {
        Some("NoCache") => Cachable::NoCache,
        Some("WriteAround") => Cachable::WriteAround,
        _ => Cachable::WriteThrough,
    };
    let polling_ms = child(n, "PollingTime")
        .or_else(|| child(src, "PollingTime"))
        .and_then(|c| int(text(c)))
        .map(|v| v.max(0) as u64);
    Ok(Reg { address, length, writable: access != "RO", big_endian, cachable, polling_ms })
}

fn signed(n: roxmltree::Node<'_, '_>) -> bool {
    child(n, "Sign").map(text) == Some("Signed")
}

fn bit(n: roxmltree::Node<'_, '_>, tag: &str) -> R<Option<u32>> {
    match child(n, tag) {
        None => Ok(None),
        Some(c) => match int(text(c)) {
            Some(v) if (0..64).contains(&v) => Ok(Some(v as u32)),
            _ => Err(GenicamError::Xml(format!("<{tag}>{}</{tag}> is no bit number", text(c)))),
        },
    }
}

fn masked(n: roxmltree::Node<'_, '_>, base: Option<roxmltree::Node<'_, '_>>) -> R<Node> {
    let (lsb, msb) = match (bit(n, "Bit")?, bit(n, "LSB")?, bit(n, "MSB")?) {
        (Some(b), _, _) => (b, b),
        (None, Some(l), Some(m)) => (l, m),
        _ => return Err(GenicamError::Xml("a masked register needs <Bit> or <LSB> and <MSB>".into())),
    };
    Ok(Node::MaskedIntReg { reg: reg(n, base)?, lsb, msb, signed: signed(n) })
}

/// A GenICam float literal: decimal, exponent, or an integer (hex too).
fn float(s: &str) -> Option<f64> {
    let s = s.trim();
    s.parse::<f64>().ok().filter(|v| v.is_finite()).or_else(|| int(s).map(|v| v as f64))
}

/// `<Tag>` as a float constant or `<pTag>` as a reference.
fn fval(n: roxmltree::Node<'_, '_>, tag: &str) -> R<Option<FVal>> {
    if let Some(c) = child(n, tag) {
        let v = float(text(c))
            .ok_or_else(|| GenicamError::Xml(format!("<{tag}>{}</{tag}> is no number", text(c))))?;
        return Ok(Some(FVal::Const(v)));
    }
    Ok(child(n, &format!("p{tag}")).map(|c| FVal::Node(text(c).to_string())))
}

/// A formula's variables (name, node) and constants (name, value).
type Inputs = (Vec<(String, String)>, Vec<(String, f64)>);

/// A formula node's `pVariable`s and (float) `Constant`s.
fn formula_inputs(n: roxmltree::Node<'_, '_>) -> R<Inputs> {
    let (mut vars, mut consts) = (Vec::new(), Vec::new());
    for c in n.children().filter(|c| c.is_element()) {
        let name = c.attribute("Name").unwrap_or("").to_string();
        match c.tag_name().name() {
            "pVariable" => vars.push((name, text(c).to_string())),
            "Constant" => consts.push((
                name,
                float(text(c)).ok_or_else(|| GenicamError::Xml(format!("constant `{}`", text(c))))?,
            )),
            _ => {}
        }
    }
    Ok((vars, consts))
}

fn value_of(n: roxmltree::Node<'_, '_>) -> R<IVal> {
    ival(n, "Value")?.ok_or_else(|| GenicamError::Xml("a node without <Value> or <pValue>".into()))
}

fn parse_node(n: roxmltree::Node<'_, '_>) -> R<Node> {
    Ok(match n.tag_name().name() {
        "Integer" => Node::Integer {
            value: value_of(n)?,
            min: ival(n, "Min")?,
            max: ival(n, "Max")?,
            inc: ival(n, "Inc")?,
        },
        "IntReg" => Node::IntReg { reg: reg(n, None)?, signed: signed(n) },
        "MaskedIntReg" => masked(n, None)?,
        "StringReg" => Node::StringReg { reg: reg(n, None)? },
        "Enumeration" => {
            let mut entries = Vec::new();
            for e in n.children().filter(|c| c.is_element() && c.tag_name().name() == "EnumEntry") {
                let name = e.attribute("Name").unwrap_or("").to_string();
                let v = child(e, "Value").and_then(|v| int(text(v)));
                let v = v.ok_or_else(|| GenicamError::Xml(format!("enum entry `{name}` without a value")))?;
                entries.push((name, v));
            }
            Node::Enumeration { entries, value: value_of(n)? }
        }
        "Command" => {
            Node::Command { value: value_of(n)?, command: ival(n, "CommandValue")?.unwrap_or(IVal::Const(1)) }
        }
        "Boolean" => Node::Boolean {
            value: value_of(n)?,
            on: child(n, "OnValue").and_then(|v| int(text(v))).unwrap_or(1),
            off: child(n, "OffValue").and_then(|v| int(text(v))).unwrap_or(0),
        },
        "IntSwissKnife" => {
            let mut vars = Vec::new();
            let mut consts = Vec::new();
            for c in n.children().filter(|c| c.is_element()) {
                let name = c.attribute("Name").unwrap_or("").to_string();
                match c.tag_name().name() {
                    "pVariable" => vars.push((name, text(c).to_string())),
                    "Constant" => consts.push((
                        name,
                        int(text(c)).ok_or_else(|| GenicamError::Xml(format!("constant `{}`", text(c))))?,
                    )),
                    _ => {}
                }
            }
            let f = child(n, "Formula").map(text).unwrap_or("");
            Node::IntSwissKnife { vars, consts, formula: formula::parse(f) }
        }
        "Float" => Node::Float {
            value: fval(n, "Value")?
                .ok_or_else(|| GenicamError::Xml("a node without <Value> or <pValue>".into()))?,
            min: fval(n, "Min")?,
            max: fval(n, "Max")?,
            inc: fval(n, "Inc")?,
            unit: child(n, "Unit").map(text).unwrap_or("").to_string(),
        },
        "FloatReg" => {
            let r = reg(n, None)?;
            if !matches!(r.length, IVal::Const(4 | 8)) {
                return Err(GenicamError::Xml("a FloatReg is 4 or 8 bytes long".into()));
            }
            Node::FloatReg { reg: r }
        }
        kind @ ("Converter" | "IntConverter") => {
            let (vars, consts) = formula_inputs(n)?;
            let formula = |tag: &str| formula::parse(child(n, tag).map(text).unwrap_or(""));
            let value = child(n, "pValue")
                .map(|c| text(c).to_string())
                .ok_or_else(|| GenicamError::Xml("a converter without <pValue>".into()))?;
            Node::Converter {
                vars,
                consts,
                to: formula("FormulaTo"),
                from: formula("FormulaFrom"),
                value,
                int: kind == "IntConverter",
            }
        }
        "SwissKnife" => {
            let (vars, consts) = formula_inputs(n)?;
            Node::SwissKnife {
                vars,
                consts,
                formula: formula::parse(child(n, "Formula").map(text).unwrap_or("")),
            }
        }
        other => Node::Other(other.to_string()),
    })
}

/// Node elements we know; anything else with a `Name` (categories, ports, groups' members of
/// unknown kinds) is recorded as `Other` so an error can say what it is.
const SKIP: &[&str] = &["Category", "Port", "EnumEntry", "StructEntry", "pFeature", "RegisterDescription"];

impl NodeMap {
    /// Read a device's XML as stored on it: plain text, or a zip archive holding one `.xml`.
    pub fn load(bytes: &[u8]) -> R<NodeMap> {
        let unzipped;
        let bytes = if bytes.starts_with(b"PK\x03\x04") {
            unzipped = unzip(bytes)?;
            &unzipped[..]
        } else {
            bytes
        };
        if bytes.len() > MAX_XML_BYTES {
            return Err(GenicamError::Xml(format!("{} bytes is more than any device's XML", bytes.len())));
        }
        let s = std::str::from_utf8(bytes).map_err(|e| GenicamError::Xml(format!("not UTF-8: {e}")))?;
        let s = s.trim_start_matches('\u{feff}').trim_end_matches('\0');
        let opts =
            roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 4_000_000, ..Default::default() };
        let doc =
            roxmltree::Document::parse_with_options(s, opts).map_err(|e| GenicamError::Xml(e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().name() != "RegisterDescription" {
            return Err(GenicamError::Xml(format!(
                "root element is <{}>, not <RegisterDescription>",
                root.tag_name().name()
            )));
        }
        let mut map = NodeMap {
            model: root.attribute("ModelName").unwrap_or("").to_string(),
            vendor: root.attribute("VendorName").unwrap_or("").to_string(),
            ..Default::default()
        };
        for n in root.descendants().filter(|n| n.is_element()) {
            let kind = n.tag_name().name();
            if kind == "StructReg" {
                for e in n.children().filter(|c| c.is_element() && c.tag_name().name() == "StructEntry") {
                    if let Some(name) = e.attribute("Name") {
                        let node =
                            masked(e, Some(n)).map_err(|err| GenicamError::Xml(format!("{name}: {err}")))?;
                        map.nodes.insert(name.to_string(), node);
                    }
                }
                continue;
            }
            let Some(name) = n.attribute("Name") else { continue };
            if SKIP.contains(&kind)
                || n.parent_element().is_some_and(|p| p.tag_name().name() == "Enumeration")
            {
                continue;
            }
            let node = parse_node(n).map_err(|err| GenicamError::Xml(format!("{name}: {err}")))?;
            map.nodes.insert(name.to_string(), node);
            let named = |tag: &str| {
                n.children()
                    .filter(|c| c.is_element() && c.tag_name().name() == tag)
                    .map(|c| text(c).trim().to_string())
                    .collect::<Vec<_>>()
            };
            let selected = named("pSelected");
            if !selected.is_empty() {
                map.selected.push((name.to_string(), selected));
            }
            for by in named("pInvalidator") {
                map.invalidates.entry(by).or_default().push(name.to_string());
            }
            let reference = |tag: &str| child(n, tag).map(|c| text(c).to_string());
            let guard = Guard {
                locked: reference("pIsLocked"),
                available: reference("pIsAvailable"),
                implemented: reference("pIsImplemented"),
                read_only: child(n, "ImposedAccessMode").map(text) == Some("RO"),
            };
            if guard != Guard::default() {
                map.guards.insert(name.to_string(), guard);
            }
        }
        Ok(map)
    }

    /// Every node's name (features and the registers behind them), in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// Is there a feature of this name (of any kind)?
    pub fn has(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    fn node(&self, name: &str) -> R<&Node> {
        self.nodes.get(name).ok_or_else(|| GenicamError::Missing(name.to_string()))
    }

    fn ival(&self, port: &mut dyn Port, v: &IVal, depth: u32) -> R<i64> {
        match v {
            IVal::Const(c) => Ok(*c),
            IVal::Node(n) => self.int_at(port, n, depth + 1),
        }
    }

    fn address(&self, port: &mut dyn Port, name: &str, r: &Reg, depth: u32) -> R<(u64, usize)> {
        let mut a: i64 = 0;
        for part in &r.address {
            let v = match part {
                AddrPart::Const(c) => *c,
                AddrPart::Node(n) => self.int_at(port, n, depth + 1)?,
                AddrPart::Index { node, offset } => {
                    self.int_at(port, node, depth + 1)?.wrapping_mul(self.ival(port, offset, depth)?)
                }
            };
            a = a.wrapping_add(v);
        }
        let len = self.ival(port, &r.length, depth)?;
        if a < 0 {
            return Err(GenicamError::Register {
                name: name.into(),
                msg: format!("address {a} is negative"),
            });
        }
        Ok((a as u64, usize::try_from(len).unwrap_or(usize::MAX)))
    }

    fn read_reg(&self, port: &mut dyn Port, name: &str, r: &Reg, depth: u32) -> R<(Vec<u8>, u64)> {
        let (addr, len) = self.address(port, name, r, depth)?;
        if !(1..=8).contains(&len) {
            return Err(GenicamError::Register {
                name: name.into(),
                msg: format!("length {len} (1 to 8 bytes)"),
            });
        }
        let b = self.read_port(port, name, r, addr, len)?;
        if b.len() != len {
            return Err(GenicamError::Port {
                name: name.into(),
                addr: addr as i64,
                source: PortError::Short { got: b.len(), want: len },
            });
        }
        Ok((b, addr))
    }

    /// Register `name`'s bytes: from the cache when caching is on, the register may be cached
    /// and its value is not older than its polling time; from the device otherwise (and kept).
    fn read_port(&self, port: &mut dyn Port, name: &str, r: &Reg, addr: u64, len: usize) -> R<Vec<u8>> {
        let cachable = self.caching && r.cachable != Cachable::NoCache;
        if cachable {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, b, at)) = cache.entries.get(&(addr, len))
                && r.polling_ms.is_none_or(|ms| at.elapsed().as_millis() < u128::from(ms))
            {
                return Ok(b.clone());
            }
        }
        let b = port.read(addr, len).map_err(|source| GenicamError::Port {
            name: name.into(),
            addr: addr as i64,
            source,
        })?;
        if cachable && b.len() == len {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.entries.insert((addr, len), (name.to_string(), b.clone(), std::time::Instant::now()));
        }
        Ok(b)
    }

    /// Write register `name`'s bytes; the cache keeps what was written (WriteThrough) or
    /// forgets it (WriteAround), and forgets what overlapped it and what the write invalidates.
    fn write_port(&self, port: &mut dyn Port, name: &str, r: &Reg, addr: u64, b: &[u8]) -> R<()> {
        let result = port.write(addr, b).map_err(|source| GenicamError::Port {
            name: name.into(),
            addr: addr as i64,
            source,
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.forget_overlapping(addr, b.len());
        if result.is_ok() && self.caching && r.cachable == Cachable::WriteThrough {
            cache.entries.insert((addr, b.len()), (name.to_string(), b.to_vec(), std::time::Instant::now()));
        }
        drop(cache);
        self.invalidated_by(name);
        result
    }

    /// Forget the cached values of the registers a write to `name` makes stale.
    fn invalidated_by(&self, name: &str) {
        let Some(stale) = self.invalidates.get(name) else { return };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.entries.retain(|_, (owner, _, _)| !stale.contains(owner));
    }

    /// Keep register values read and written, as each register's `Cachable`, `PollingTime` and
    /// `pInvalidator` allow (off by default: every read goes to the device).
    pub fn set_caching(&mut self, on: bool) {
        self.caching = on;
        if !on {
            self.invalidate();
        }
    }

    /// Forget every cached value (the device was reset or reconnected).
    pub fn invalidate(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).entries.clear();
    }

    /// Selectors and the features each selects (`pSelected`), in the XML's order.
    pub fn selectors(&self) -> &[(String, Vec<String>)] {
        &self.selected
    }

    fn int_at(&self, port: &mut dyn Port, name: &str, depth: u32) -> R<i64> {
        if depth > MAX_DEPTH {
            return Err(GenicamError::Depth(name.into()));
        }
        match self.node(name)? {
            Node::Integer { value: IVal::Const(c), .. } => Ok(self.local.get(name).copied().unwrap_or(*c)),
            Node::Integer { value, .. } | Node::Command { value, .. } | Node::Enumeration { value, .. } => {
                self.ival(port, value, depth)
            }
            Node::Boolean { value, on, .. } => Ok(i64::from(self.ival(port, value, depth)? == *on)),
            Node::IntReg { reg, signed } => {
                let (b, _) = self.read_reg(port, name, reg, depth)?;
                Ok(decode(&b, reg.big_endian, 0, (b.len() * 8 - 1) as u32, *signed))
            }
            Node::MaskedIntReg { reg, lsb, msb, signed } => {
                let (b, _) = self.read_reg(port, name, reg, depth)?;
                let (lo, hi) =
                    bits(&b, reg.big_endian, *lsb, *msb).ok_or_else(|| GenicamError::Register {
                        name: name.into(),
                        msg: format!("bits {lsb}..{msb} outside {} bytes", b.len()),
                    })?;
                Ok(decode(&b, reg.big_endian, lo, hi, *signed))
            }
            Node::IntSwissKnife { vars, consts, formula } => {
                let expr = formula
                    .as_ref()
                    .map_err(|m| GenicamError::Formula { name: name.into(), msg: m.clone() })?;
                let mut values: Vec<(&str, i64)> = consts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                for (k, n) in vars {
                    values.push((k, self.int_at(port, n, depth + 1)?));
                }
                expr.eval(&values).map_err(|msg| GenicamError::Formula { name: name.into(), msg })
            }
            Node::Float { .. } | Node::FloatReg { .. } | Node::Converter { .. } | Node::SwissKnife { .. } => {
                let v = self.float_at(port, name, depth)?;
                if !(v.is_finite() && v.abs() < 9.2e18) {
                    return Err(GenicamError::Formula {
                        name: name.into(),
                        msg: format!("{v} is no integer"),
                    });
                }
                Ok(v.round() as i64)
            }
            Node::StringReg { .. } => Err(GenicamError::Unsupported {
                name: name.into(),
                kind: "StringReg (read it as a string)".into(),
            }),
            Node::Other(kind) => Err(GenicamError::Unsupported { name: name.into(), kind: kind.clone() }),
        }
    }

    fn fval(&self, port: &mut dyn Port, v: &FVal, depth: u32) -> R<f64> {
        match v {
            FVal::Const(c) => Ok(*c),
            FVal::Node(n) => self.float_at(port, n, depth + 1),
        }
    }

    /// A formula's inputs: its constants and its variables' values.
    fn inputs<'a>(
        &self,
        port: &mut dyn Port,
        vars: &'a [(String, String)],
        consts: &'a [(String, f64)],
        depth: u32,
    ) -> R<Vec<(&'a str, f64)>> {
        let mut values: Vec<(&str, f64)> = consts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        for (k, n) in vars {
            values.push((k, self.float_at(port, n, depth + 1)?));
        }
        Ok(values)
    }

    fn float_at(&self, port: &mut dyn Port, name: &str, depth: u32) -> R<f64> {
        if depth > MAX_DEPTH {
            return Err(GenicamError::Depth(name.into()));
        }
        let bad = |msg: String| GenicamError::Formula { name: name.into(), msg };
        match self.node(name)? {
            Node::Float { value: FVal::Const(c), .. } => Ok(self.local_f.get(name).copied().unwrap_or(*c)),
            Node::Float { value, .. } => self.fval(port, value, depth),
            Node::FloatReg { reg } => {
                let (b, _) = self.read_reg(port, name, reg, depth)?;
                let raw = decode(&b, reg.big_endian, 0, (b.len() * 8 - 1) as u32, false) as u64;
                Ok(if b.len() == 4 { f64::from(f32::from_bits(raw as u32)) } else { f64::from_bits(raw) })
            }
            Node::Converter { vars, consts, from, value, int, .. } => {
                let expr = from.as_ref().map_err(|m| bad(m.clone()))?;
                let mut values = self.inputs(port, vars, consts, depth)?;
                values.push(("TO", self.float_at(port, value, depth + 1)?));
                let v = expr.eval_f64(&values).map_err(bad)?;
                Ok(if *int { v.round() } else { v })
            }
            Node::SwissKnife { vars, consts, formula } => {
                let expr = formula.as_ref().map_err(|m| bad(m.clone()))?;
                expr.eval_f64(&self.inputs(port, vars, consts, depth)?).map_err(bad)
            }
            _ => Ok(self.int_at(port, name, depth)? as f64),
        }
    }

    /// A numeric feature's range where the XML gives one: its own Min and Max, else those of
    /// what it reads (a converter's target's, converted back), as Aravis shows them.
    fn bounds(&self, port: &mut dyn Port, name: &str, depth: u32) -> Option<(f64, f64)> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.nodes.get(name)? {
            Node::Float { min: Some(lo), max: Some(hi), .. } => {
                Some((self.fval(port, lo, depth).ok()?, self.fval(port, hi, depth).ok()?))
            }
            Node::Float { value: FVal::Node(n), .. } => self.bounds(port, n, depth + 1),
            Node::Integer { min: Some(lo), max: Some(hi), .. } => {
                Some((self.ival(port, lo, depth).ok()? as f64, self.ival(port, hi, depth).ok()? as f64))
            }
            Node::Integer { value: IVal::Node(n), .. } => self.bounds(port, n, depth + 1),
            Node::Converter { vars, consts, from, value, .. } => {
                let (lo, hi) = self.bounds(port, value, depth + 1)?;
                let expr = from.as_ref().ok()?;
                let mut at = |to: f64| {
                    let mut values = self.inputs(port, vars, consts, depth).ok()?;
                    values.push(("TO", to));
                    expr.eval_f64(&values).ok()
                };
                let (a, b) = (at(lo)?, at(hi)?);
                Some((a.min(b), a.max(b)))
            }
            _ => None,
        }
    }

    /// A node that holds a float (an integer node takes a float rounded).
    fn holds_float(&self, name: &str) -> bool {
        matches!(
            self.nodes.get(name),
            Some(
                Node::Float { .. }
                    | Node::FloatReg { .. }
                    | Node::SwissKnife { .. }
                    | Node::Converter { int: false, .. }
            )
        )
    }

    fn set_float_at(&mut self, port: &mut dyn Port, name: &str, v: f64, depth: u32) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(GenicamError::Depth(name.into()));
        }
        let range = |min: f64, max: f64, inc: f64| GenicamError::FloatRange {
            name: name.into(),
            value: v,
            min,
            max,
            inc,
        };
        if !v.is_finite() {
            return Err(range(f64::MIN, f64::MAX, 0.0));
        }
        match self.node(name)?.clone() {
            Node::Float { value, min, max, inc, .. } => {
                let lo = match &min {
                    Some(m) => self.fval(port, m, depth)?,
                    None => f64::MIN,
                };
                let hi = match &max {
                    Some(m) => self.fval(port, m, depth)?,
                    None => f64::MAX,
                };
                let step = match &inc {
                    Some(m) => self.fval(port, m, depth)?,
                    None => 0.0,
                };
                let k = if step > 0.0 { (v - lo) / step } else { 0.0 };
                if v < lo || v > hi || (k - k.round()).abs() > 1e-6 {
                    return Err(range(lo, hi, step));
                }
                match value {
                    FVal::Const(_) => {
                        self.local_f.insert(name.to_string(), v);
                        Ok(())
                    }
                    FVal::Node(n) => self.set_float_at(port, &n, v, depth + 1),
                }
            }
            Node::FloatReg { reg } => {
                if !reg.writable {
                    return Err(GenicamError::ReadOnly(name.into()));
                }
                let (addr, len) = self.address(port, name, &reg, depth)?;
                let raw = match len {
                    4 if v.abs() <= f64::from(f32::MAX) => i64::from((v as f32).to_bits()),
                    4 => return Err(range(f64::from(f32::MIN), f64::from(f32::MAX), 0.0)),
                    _ => v.to_bits() as i64,
                };
                self.write_port(port, name, &reg, addr, &encode(raw, len, reg.big_endian))
            }
            Node::Converter { vars, consts, to, value, .. } => {
                let bad = |msg: String| GenicamError::Formula { name: name.into(), msg };
                let expr = to.as_ref().map_err(|m| bad(m.clone()))?;
                let raw = {
                    let mut values = self.inputs(port, &vars, &consts, depth)?;
                    values.push(("FROM", v));
                    expr.eval_f64(&values).map_err(bad)?
                };
                if self.holds_float(&value) {
                    self.set_float_at(port, &value, raw, depth + 1)
                } else if raw.is_finite() && raw.abs() < 9.2e18 {
                    self.set_at(port, &value, raw.round() as i64, depth + 1)
                } else {
                    Err(range(f64::MIN, f64::MAX, 0.0))
                }
            }
            Node::SwissKnife { .. } => Err(GenicamError::ReadOnly(name.into())),
            _ if v.abs() < 9.2e18 => self.set_at(port, name, v.round() as i64, depth),
            _ => Err(range(i64::MIN as f64, i64::MAX as f64, 1.0)),
        }
    }

    fn set_at(&mut self, port: &mut dyn Port, name: &str, v: i64, depth: u32) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(GenicamError::Depth(name.into()));
        }
        match self.node(name)?.clone() {
            Node::Integer { value, min, max, inc } => {
                let lo = match &min {
                    Some(m) => self.ival(port, m, depth)?,
                    None => i64::MIN,
                };
                let hi = match &max {
                    Some(m) => self.ival(port, m, depth)?,
                    None => i64::MAX,
                };
                let step = match &inc {
                    Some(m) => self.ival(port, m, depth)?,
                    None => 1,
                };
                let off_step = step > 1 && (v.wrapping_sub(lo)).rem_euclid(step) != 0;
                if v < lo || v > hi || off_step {
                    return Err(GenicamError::Range {
                        name: name.into(),
                        value: v,
                        min: lo,
                        max: hi,
                        inc: step,
                    });
                }
                match value {
                    IVal::Const(_) => {
                        self.local.insert(name.to_string(), v);
                        Ok(())
                    }
                    IVal::Node(n) => self.set_at(port, &n, v, depth + 1),
                }
            }
            Node::IntReg { reg, signed } => {
                if !reg.writable {
                    return Err(GenicamError::ReadOnly(name.into()));
                }
                let (addr, len) = self.address(port, name, &reg, depth)?;
                if !(1..=8).contains(&len) {
                    return Err(GenicamError::Register {
                        name: name.into(),
                        msg: format!("length {len} (1 to 8 bytes)"),
                    });
                }
                // The register's own range, said as it is when a value does not fit.
                let bits = len as u32 * 8;
                let (min, max) = match (signed, bits) {
                    (_, 64) => (if signed { i64::MIN } else { 0 }, i64::MAX),
                    (true, b) => (-(1i64 << (b - 1)), (1i64 << (b - 1)) - 1),
                    (false, b) => (0, (1i64 << b) - 1),
                };
                if v < min || v > max {
                    return Err(GenicamError::Range { name: name.into(), value: v, min, max, inc: 1 });
                }
                let b = encode(v, len, reg.big_endian);
                self.write_port(port, name, &reg, addr, &b)
            }
            Node::MaskedIntReg { reg, lsb, msb, .. } => {
                if !reg.writable {
                    return Err(GenicamError::ReadOnly(name.into()));
                }
                let (old, addr) = self.read_reg(port, name, &reg, depth)?;
                let (lo, hi) = bits(&old, reg.big_endian, lsb, msb).ok_or_else(|| {
                    GenicamError::Register { name: name.into(), msg: format!("bits {lsb}..{msb}") }
                })?;
                let width = hi - lo + 1;
                let mask: u64 = if width == 64 { u64::MAX } else { ((1u64 << width) - 1) << lo };
                let raw = decode(&old, reg.big_endian, 0, (old.len() * 8 - 1) as u32, false) as u64;
                let new = (raw & !mask) | (((v as u64) << lo) & mask);
                let b = encode(new as i64, old.len(), reg.big_endian);
                self.write_port(port, name, &reg, addr, &b)
            }
            Node::Boolean { value, on, off } => {
                let raw = if v != 0 { on } else { off };
                self.set_ival(port, name, &value, raw, depth)
            }
            Node::Enumeration { value, entries } => {
                if !entries.iter().any(|(_, e)| *e == v) {
                    return Err(GenicamError::UnknownValue { name: name.into(), value: v });
                }
                self.set_ival(port, name, &value, v, depth)
            }
            Node::Command { value, .. } => self.set_ival(port, name, &value, v, depth),
            Node::IntSwissKnife { .. } | Node::SwissKnife { .. } => Err(GenicamError::ReadOnly(name.into())),
            Node::Float { .. } | Node::FloatReg { .. } | Node::Converter { .. } => {
                self.set_float_at(port, name, v as f64, depth)
            }
            Node::StringReg { .. } => {
                Err(GenicamError::Unsupported { name: name.into(), kind: "StringReg".into() })
            }
            Node::Other(kind) => Err(GenicamError::Unsupported { name: name.into(), kind }),
        }
    }

    fn set_ival(&mut self, port: &mut dyn Port, name: &str, target: &IVal, v: i64, depth: u32) -> R<()> {
        match target {
            IVal::Const(_) => {
                self.local.insert(name.to_string(), v);
                Ok(())
            }
            IVal::Node(n) => self.set_at(port, n, v, depth + 1),
        }
    }

    /// Refused when the feature is not implemented or not available now.
    fn check_read(&self, port: &mut dyn Port, name: &str) -> R<()> {
        let Some(g) = self.guards.get(name) else { return Ok(()) };
        for by in [&g.implemented, &g.available].into_iter().flatten() {
            if self.int_at(port, by, 1)? == 0 {
                return Err(GenicamError::NotAvailable { name: name.into(), by: by.clone() });
            }
        }
        Ok(())
    }

    /// Refused as [`Self::check_read`], and when locked or imposed read-only.
    fn check_write(&self, port: &mut dyn Port, name: &str) -> R<()> {
        self.check_read(port, name)?;
        let Some(g) = self.guards.get(name) else { return Ok(()) };
        if g.read_only {
            return Err(GenicamError::ReadOnly(name.into()));
        }
        if let Some(by) = &g.locked
            && self.int_at(port, by, 1)? != 0
        {
            return Err(GenicamError::Locked { name: name.into(), by: by.clone() });
        }
        Ok(())
    }

    /// An integer feature's value (also an enumeration's or boolean's integer, a formula's result).
    pub fn int(&self, port: &mut dyn Port, name: &str) -> R<i64> {
        self.check_read(port, name)?;
        self.int_at(port, name, 0)
    }

    /// Set an integer feature, refused outside its Min/Max/Inc, or while locked.
    pub fn set_int(&mut self, port: &mut dyn Port, name: &str, v: i64) -> R<()> {
        self.check_write(port, name)?;
        let r = self.set_at(port, name, v, 0);
        self.invalidated_by(name);
        r
    }

    /// A float feature's value (also any integer feature's, as a float).
    pub fn float(&self, port: &mut dyn Port, name: &str) -> R<f64> {
        self.check_read(port, name)?;
        self.float_at(port, name, 0)
    }

    /// Set a float feature (through its converter or register), refused outside its Min, Max
    /// and Inc, or while locked; an integer feature takes the value rounded.
    pub fn set_float(&mut self, port: &mut dyn Port, name: &str, v: f64) -> R<()> {
        self.check_write(port, name)?;
        let r = self.set_float_at(port, name, v, 0);
        self.invalidated_by(name);
        r
    }

    /// A feature as a listing shows it (as `arv-tool-0.8 features` does): kind, value, range.
    pub fn describe(&self, port: &mut dyn Port, name: &str) -> R<FeatureInfo> {
        let node = self.node(name)?;
        let words = |e: GenicamError| e.to_string();
        let num = |v: f64| if v == v.trunc() && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v}") };
        let (kind, value, range) = match node {
            Node::Integer { min, max, .. } => {
                let lo = min.as_ref().map(|m| self.ival(port, m, 0).map_or("?".into(), |v| v.to_string()));
                let hi = max.as_ref().map(|m| self.ival(port, m, 0).map_or("?".into(), |v| v.to_string()));
                let range = match (lo, hi) {
                    (None, None) => String::new(),
                    (lo, hi) => format!("{} .. {}", lo.unwrap_or_default(), hi.unwrap_or_default()),
                };
                ("Integer", self.int(port, name).map(|v| v.to_string()).map_err(words), range)
            }
            Node::Float { unit, .. } => {
                let range = self
                    .bounds(port, name, 0)
                    .map_or(String::new(), |(lo, hi)| format!("{} .. {}", num(lo), num(hi)));
                let value =
                    self.float(port, name).map(|v| format!("{} {unit}", num(v)).trim_end().to_string());
                ("Float", value.map_err(words), range)
            }
            Node::Enumeration { entries, .. } => {
                let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
                (
                    "Enumeration",
                    self.enum_entry(port, name).map_err(words),
                    format!("{{{}}}", names.join(", ")),
                )
            }
            Node::StringReg { .. } => ("StringReg", self.string(port, name).map_err(words), String::new()),
            Node::Command { .. } => ("Command", Ok("(execute)".into()), String::new()),
            Node::Boolean { .. } => {
                ("Boolean", self.int(port, name).map(|v| (v != 0).to_string()).map_err(words), String::new())
            }
            Node::FloatReg { .. } | Node::SwissKnife { .. } | Node::Converter { int: false, .. } => {
                let kind = match node {
                    Node::FloatReg { .. } => "FloatReg",
                    Node::SwissKnife { .. } => "SwissKnife",
                    _ => "Converter",
                };
                (kind, self.float(port, name).map(num).map_err(words), String::new())
            }
            Node::IntReg { .. }
            | Node::MaskedIntReg { .. }
            | Node::IntSwissKnife { .. }
            | Node::Converter { .. } => {
                let kind = match node {
                    Node::IntReg { .. } => "IntReg",
                    Node::MaskedIntReg { .. } => "MaskedIntReg",
                    Node::IntSwissKnife { .. } => "IntSwissKnife",
                    _ => "IntConverter",
                };
                (kind, self.int(port, name).map(|v| v.to_string()).map_err(words), String::new())
            }
            Node::Other(_) => ("Other", Err("not read here".to_string()), String::new()),
        };
        Ok(FeatureInfo { name: name.into(), kind, value, range })
    }

    /// An enumeration's current entry.
    pub fn enum_entry(&self, port: &mut dyn Port, name: &str) -> R<String> {
        let Node::Enumeration { entries, .. } = self.node(name)? else {
            return Err(GenicamError::Unsupported {
                name: name.into(),
                kind: "non-enumeration read as one".into(),
            });
        };
        let v = self.int(port, name)?;
        entries
            .iter()
            .find(|(_, e)| *e == v)
            .map(|(n, _)| n.clone())
            .ok_or_else(|| GenicamError::UnknownValue { name: name.into(), value: v })
    }

    /// Set an enumeration by entry name.
    pub fn set_enum(&mut self, port: &mut dyn Port, name: &str, entry: &str) -> R<()> {
        let Node::Enumeration { entries, .. } = self.node(name)? else {
            return Err(GenicamError::Unsupported {
                name: name.into(),
                kind: "non-enumeration set as one".into(),
            });
        };
        let Some(v) = entries.iter().find(|(n, _)| n == entry).map(|(_, v)| *v) else {
            let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
            return Err(GenicamError::NoEntry {
                name: name.into(),
                entry: entry.into(),
                entries: names.join(", "),
            });
        };
        self.check_write(port, name)?;
        let r = self.set_at(port, name, v, 0);
        self.invalidated_by(name);
        r
    }

    /// The entry names of an enumeration.
    pub fn entries(&self, name: &str) -> R<Vec<String>> {
        match self.node(name)? {
            Node::Enumeration { entries, .. } => Ok(entries.iter().map(|(n, _)| n.clone()).collect()),
            _ => Err(GenicamError::Unsupported { name: name.into(), kind: "non-enumeration".into() }),
        }
    }

    /// Run a command feature (write its CommandValue).
    pub fn execute(&mut self, port: &mut dyn Port, name: &str) -> R<()> {
        let Node::Command { value, command } = self.node(name)?.clone() else {
            return Err(GenicamError::Unsupported { name: name.into(), kind: "non-command executed".into() });
        };
        self.check_write(port, name)?;
        let v = self.ival(port, &command, 0)?;
        let r = self.set_ival(port, name, &value, v, 0);
        self.invalidated_by(name);
        r
    }

    /// A string register's text (up to its first NUL).
    pub fn string(&self, port: &mut dyn Port, name: &str) -> R<String> {
        self.check_read(port, name)?;
        let Node::StringReg { reg } = self.node(name)? else {
            return Err(GenicamError::Unsupported {
                name: name.into(),
                kind: "non-string read as text".into(),
            });
        };
        let (addr, len) = self.address(port, name, reg, 0)?;
        if len > MAX_STRING_REG {
            return Err(GenicamError::Register { name: name.into(), msg: format!("string of {len} bytes") });
        }
        let b = self.read_port(port, name, reg, addr, len)?;
        let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }
}

/// The register bit range `lsb..msb` as GenICam numbers it, as (low, high) bit positions counted
/// from the value's least significant bit. Big-endian registers number bit 0 as the most
/// significant bit of the register.
fn bits(b: &[u8], big_endian: bool, lsb: u32, msb: u32) -> Option<(u32, u32)> {
    let n = (b.len() * 8) as u32;
    let (lo, hi) = if big_endian { (n.checked_sub(1 + lsb)?, n.checked_sub(1 + msb)?) } else { (lsb, msb) };
    (lo <= hi && hi < n).then_some((lo, hi))
}

/// Bits `lo..=hi` of the register bytes as an integer.
fn decode(b: &[u8], big_endian: bool, lo: u32, hi: u32, signed: bool) -> i64 {
    let mut raw: u64 = 0;
    for k in 0..b.len().min(8) {
        let byte = if big_endian { b[k] } else { b[b.len() - 1 - k] };
        raw = (raw << 8) | u64::from(byte);
    }
    let width = hi - lo + 1;
    let v = if width >= 64 { raw >> lo } else { (raw >> lo) & ((1u64 << width) - 1) };
    if signed && width < 64 && v >> (width - 1) & 1 == 1 {
        (v | !((1u64 << width) - 1)) as i64
    } else {
        v as i64
    }
}

fn encode(v: i64, len: usize, big_endian: bool) -> Vec<u8> {
    let all = (v as u64).to_be_bytes();
    let mut b = all[8 - len..].to_vec();
    if !big_endian {
        b.reverse();
    }
    b
}

fn unzip(bytes: &[u8]) -> R<Vec<u8>> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| GenicamError::Xml(format!("zip: {e}")))?;
    let index = (0..z.len())
        .find(|k| {
            z.name_for_index(*k).is_some_and(|n| n.is_ok_and(|n| n.to_ascii_lowercase().ends_with(".xml")))
        })
        .ok_or_else(|| GenicamError::Xml("the zip holds no .xml file".into()))?;
    let f = z.by_index(index).map_err(|e| GenicamError::Xml(format!("zip: {e}")))?;
    let mut out = Vec::new();
    f.take(MAX_XML_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| GenicamError::Xml(format!("zip: {e}")))?;
    Ok(out)
}

/// Integer formulas of SwissKnife nodes: C-like operators as GenICam defines them (`? :`,
/// `|| && | ^ &`, `= <>`, `< > <= >=`, `<< >>`, `+ -`, `* / %`, `**`, unary `- + ~ !`), decimal
/// and hex literals, variables, and `ABS`, `SGN`, `NEG`.
pub mod formula {
    #[derive(Clone, Debug, PartialEq)]
    pub enum Expr {
        Num(i64),
        /// A decimal literal with a point or an exponent (`1.5`, `1e6`): float formulas only.
        Real(f64),
        Var(String),
        Un(u8, Box<Expr>),
        Bin(&'static str, Box<Expr>, Box<Expr>),
        Cond(Box<Expr>, Box<Expr>, Box<Expr>),
        Call(String, Box<Expr>),
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Tok {
        Num(i64),
        Real(f64),
        Id(String),
        Op(&'static str),
    }

    const OPS: &[&str] = &[
        "**", "<<", ">>", "<=", ">=", "<>", "&&", "||", "(", ")", "?", ":", "+", "-", "*", "/", "%", "&",
        "|", "^", "~", "!", "=", "<", ">",
    ];

    fn lex(s: &str) -> Result<Vec<Tok>, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut out = Vec::new();
        'outer: while i < b.len() {
            let c = b[i];
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let hex = b[i..].starts_with(b"0x") || b[i..].starts_with(b"0X");
            if hex {
                let start = i;
                i += 2;
                while i < b.len() && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                let t = &s[start..i];
                out.push(Tok::Num(super::int(t).ok_or_else(|| format!("`{t}` is no integer"))?));
                continue;
            }
            if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
                // Decimal: digits, then a fraction and an exponent that make it a float.
                let start = i;
                let digits = |i: &mut usize| {
                    while *i < b.len() && b[*i].is_ascii_digit() {
                        *i += 1;
                    }
                };
                digits(&mut i);
                let mut real = false;
                if i < b.len() && b[i] == b'.' {
                    real = true;
                    i += 1;
                    digits(&mut i);
                }
                if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                    let mut j = i + 1;
                    if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                        j += 1;
                    }
                    if j < b.len() && b[j].is_ascii_digit() {
                        real = true;
                        i = j;
                        digits(&mut i);
                    }
                }
                if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
                    return Err(format!("`{}` is no number", &s[start..=i]));
                }
                let t = &s[start..i];
                out.push(if real {
                    Tok::Real(t.parse().map_err(|_| format!("`{t}` is no number"))?)
                } else {
                    Tok::Num(super::int(t).ok_or_else(|| format!("`{t}` is no integer"))?)
                });
                continue;
            }
            if c.is_ascii_alphabetic() || c == b'_' {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                    i += 1;
                }
                out.push(Tok::Id(s[start..i].to_string()));
                continue;
            }
            for op in OPS {
                if b[i..].starts_with(op.as_bytes()) {
                    out.push(Tok::Op(op));
                    i += op.len();
                    continue 'outer;
                }
            }
            return Err(format!("unexpected `{}`", &s[i..].chars().next().unwrap_or(' ')));
        }
        Ok(out)
    }

    fn binding(op: &str) -> Option<(u8, bool)> {
        // (precedence, right-associative)
        Some(match op {
            "||" => (2, false),
            "&&" => (3, false),
            "|" => (4, false),
            "^" => (5, false),
            "&" => (6, false),
            "=" | "<>" => (7, false),
            "<" | ">" | "<=" | ">=" => (8, false),
            "<<" | ">>" => (9, false),
            "+" | "-" => (10, false),
            "*" | "/" | "%" => (11, false),
            "**" => (12, true),
            _ => return None,
        })
    }

    struct P {
        t: Vec<Tok>,
        i: usize,
        depth: u32,
    }

    impl P {
        fn peek(&self) -> Option<&Tok> {
            self.t.get(self.i)
        }
        fn next(&mut self) -> Option<Tok> {
            let t = self.t.get(self.i).cloned();
            self.i += 1;
            t
        }
        fn expect(&mut self, op: &str) -> Result<(), String> {
            match self.next() {
                Some(Tok::Op(o)) if o == op => Ok(()),
                other => Err(format!("expected `{op}`, found {other:?}")),
            }
        }

        fn expr(&mut self, min: u8) -> Result<Expr, String> {
            self.depth += 1;
            if self.depth > 64 {
                return Err("nested too deep".into());
            }
            let mut lhs = self.unary()?;
            while let Some(Tok::Op(op)) = self.peek() {
                let op = *op;
                if op == "?" {
                    if min > 1 {
                        break;
                    }
                    self.i += 1;
                    let a = self.expr(1)?;
                    self.expect(":")?;
                    let b = self.expr(1)?;
                    lhs = Expr::Cond(Box::new(lhs), Box::new(a), Box::new(b));
                    continue;
                }
                let Some((prec, right)) = binding(op) else { break };
                if prec < min {
                    break;
                }
                self.i += 1;
                let rhs = self.expr(if right { prec } else { prec + 1 })?;
                lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
            }
            self.depth -= 1;
            Ok(lhs)
        }

        fn unary(&mut self) -> Result<Expr, String> {
            self.depth += 1;
            if self.depth > 64 {
                return Err("nested too deep".into());
            }
            let e = match self.next() {
                Some(Tok::Num(v)) => Expr::Num(v),
                Some(Tok::Real(v)) => Expr::Real(v),
                Some(Tok::Op("(")) => {
                    let e = self.expr(1)?;
                    self.expect(")")?;
                    e
                }
                Some(Tok::Op(o @ ("-" | "+" | "~" | "!"))) => {
                    Expr::Un(o.as_bytes()[0], Box::new(self.unary()?))
                }
                Some(Tok::Id(name)) => {
                    if matches!(self.peek(), Some(Tok::Op("("))) {
                        self.i += 1;
                        let a = self.expr(1)?;
                        self.expect(")")?;
                        Expr::Call(name.to_ascii_uppercase(), Box::new(a))
                    } else {
                        Expr::Var(name)
                    }
                }
                other => return Err(format!("expected a value, found {other:?}")),
            };
            self.depth -= 1;
            Ok(e)
        }
    }

    /// Parse a formula (at most 4096 characters).
    pub fn parse(s: &str) -> Result<Expr, String> {
        if s.len() > super::MAX_FORMULA {
            return Err(format!("{} characters", s.len()));
        }
        let mut p = P { t: lex(s)?, i: 0, depth: 0 };
        let e = p.expr(1)?;
        if p.i != p.t.len() {
            return Err(format!("unexpected {:?}", p.t[p.i]));
        }
        Ok(e)
    }

    impl Expr {
        /// Evaluate with the given variables (64-bit two's complement, wrapping).
        pub fn eval(&self, vars: &[(&str, i64)]) -> Result<i64, String> {
            Ok(match self {
                Expr::Num(v) => *v,
                Expr::Real(v) => return Err(format!("{v} is no integer (an integer formula)")),
                Expr::Var(n) => vars
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| format!("no variable `{n}`"))?,
                Expr::Un(op, a) => {
                    let a = a.eval(vars)?;
                    match op {
                        b'-' => a.wrapping_neg(),
                        b'~' => !a,
                        b'!' => i64::from(a == 0),
                        _ => a,
                    }
                }
                Expr::Cond(c, a, b) => {
                    if c.eval(vars)? != 0 {
                        a.eval(vars)?
                    } else {
                        b.eval(vars)?
                    }
                }
                Expr::Call(f, a) => {
                    let a = a.eval(vars)?;
                    match f.as_str() {
                        "ABS" => a.wrapping_abs(),
                        "SGN" => a.signum(),
                        "NEG" => a.wrapping_neg(),
                        _ => return Err(format!("function {f} is not supported in integer formulas")),
                    }
                }
                Expr::Bin(op, a, b) => {
                    let (a, b) = (a.eval(vars)?, b.eval(vars)?);
                    match *op {
                        "+" => a.wrapping_add(b),
                        "-" => a.wrapping_sub(b),
                        "*" => a.wrapping_mul(b),
                        "/" => a.checked_div(b).ok_or("division by zero")?,
                        "%" => a.checked_rem(b).ok_or("division by zero")?,
                        "**" => {
                            let e = u32::try_from(b).map_err(|_| format!("power {b}"))?;
                            a.wrapping_pow(e)
                        }
                        "<<" | ">>" if !(0..64).contains(&b) => return Err(format!("shift by {b}")),
                        "<<" => a.wrapping_shl(b as u32),
                        ">>" => a.wrapping_shr(b as u32),
                        "&" => a & b,
                        "|" => a | b,
                        "^" => a ^ b,
                        "=" => i64::from(a == b),
                        "<>" => i64::from(a != b),
                        "<" => i64::from(a < b),
                        ">" => i64::from(a > b),
                        "<=" => i64::from(a <= b),
                        ">=" => i64::from(a >= b),
                        "&&" => i64::from(a != 0 && b != 0),
                        "||" => i64::from(a != 0 || b != 0),
                        _ => unreachable!("operators come from OPS"),
                    }
                }
            })
        }

        /// Evaluate in double precision, as GenICam's `SwissKnife` and `Converter` do: the
        /// bitwise operators on the values' integer parts, comparisons and logic as 1 or 0, the
        /// functions GenApi defines, and `PI` and `E` where no variable has those names.
        pub fn eval_f64(&self, vars: &[(&str, f64)]) -> Result<f64, String> {
            let int = |v: f64| -> Result<i64, String> {
                if v.is_finite() && v.abs() < 9.2e18 {
                    Ok(v.trunc() as i64)
                } else {
                    Err(format!("{v} has no integer part"))
                }
            };
            let truth = |b: bool| if b { 1.0 } else { 0.0 };
            let v = match self {
                Expr::Num(v) => *v as f64,
                Expr::Real(v) => *v,
                Expr::Var(n) => match vars.iter().find(|(k, _)| k == n) {
                    Some((_, v)) => *v,
                    None if n == "PI" => std::f64::consts::PI,
                    None if n == "E" => std::f64::consts::E,
                    None => return Err(format!("no variable `{n}`")),
                },
                Expr::Un(op, a) => {
                    let a = a.eval_f64(vars)?;
                    match op {
                        b'-' => -a,
                        b'~' => !int(a)? as f64,
                        b'!' => truth(a == 0.0),
                        _ => a,
                    }
                }
                Expr::Cond(c, a, b) => {
                    if c.eval_f64(vars)? != 0.0 {
                        a.eval_f64(vars)?
                    } else {
                        b.eval_f64(vars)?
                    }
                }
                Expr::Call(f, a) => {
                    let a = a.eval_f64(vars)?;
                    match f.as_str() {
                        "ABS" => a.abs(),
                        "SGN" => truth(a > 0.0) - truth(a < 0.0),
                        "NEG" => -a,
                        "SIN" => a.sin(),
                        "COS" => a.cos(),
                        "TAN" => a.tan(),
                        "ASIN" => a.asin(),
                        "ACOS" => a.acos(),
                        "ATAN" => a.atan(),
                        "EXP" => a.exp(),
                        "LN" => a.ln(),
                        "LG" => a.log10(),
                        "SQRT" => a.sqrt(),
                        "TRUNC" => a.trunc(),
                        "FLOOR" => a.floor(),
                        "CEIL" => a.ceil(),
                        "ROUND" => a.round(),
                        _ => return Err(format!("no function {f}")),
                    }
                }
                Expr::Bin(op, a, b) => {
                    let (a, b) = (a.eval_f64(vars)?, b.eval_f64(vars)?);
                    match *op {
                        "+" => a + b,
                        "-" => a - b,
                        "*" => a * b,
                        "/" | "%" if b == 0.0 => return Err("division by zero".into()),
                        "/" => a / b,
                        "%" => a % b,
                        "**" => a.powf(b),
                        "<<" | ">>" => {
                            let (a, b) = (int(a)?, int(b)?);
                            if !(0..64).contains(&b) {
                                return Err(format!("shift by {b}"));
                            }
                            (if *op == "<<" { a.wrapping_shl(b as u32) } else { a.wrapping_shr(b as u32) })
                                as f64
                        }
                        "&" => (int(a)? & int(b)?) as f64,
                        "|" => (int(a)? | int(b)?) as f64,
                        "^" => (int(a)? ^ int(b)?) as f64,
                        "=" => truth(a == b),
                        "<>" => truth(a != b),
                        "<" => truth(a < b),
                        ">" => truth(a > b),
                        "<=" => truth(a <= b),
                        ">=" => truth(a >= b),
                        "&&" => truth(a != 0.0 && b != 0.0),
                        "||" => truth(a != 0.0 || b != 0.0),
                        _ => unreachable!("operators come from OPS"),
                    }
                }
            };
            if v.is_nan() {
                return Err("not a number".into());
            }
            Ok(v)
        }
    }
}

use formula::Expr;

#[cfg(test)]
mod tests {
    use super::*;

    /// Device memory as a map of bytes.
    #[derive(Default)]
    pub struct Mem(pub HashMap<u64, u8>);

    impl Port for Mem {
        fn read(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, PortError> {
            Ok((0..len as u64).map(|k| self.0.get(&(addr + k)).copied().unwrap_or(0)).collect())
        }
        fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), PortError> {
            for (k, b) in data.iter().enumerate() {
                self.0.insert(addr + k as u64, *b);
            }
            Ok(())
        }
    }

    const XML: &str = r#"<?xml version="1.0"?>
<RegisterDescription ModelName="M" VendorName="V" xmlns="http://www.genicam.org/GenApi/Version_1_0">
  <Category Name="Root"><pFeature>Width</pFeature></Category>
  <Integer Name="Width"><pValue>WidthReg</pValue><Min>4</Min><pMax>SensorWidth</pMax><Inc>4</Inc></Integer>
  <IntReg Name="WidthReg"><Address>0x100</Address><Length>4</Length><AccessMode>RW</AccessMode><pPort>Device</pPort><Sign>Unsigned</Sign><Endianess>BigEndian</Endianess></IntReg>
  <Integer Name="SensorWidth"><Value>2048</Value></Integer>
  <Integer Name="Height"><pValue>HeightReg</pValue></Integer>
  <IntReg Name="HeightReg"><Address>0x104</Address><Length>2</Length><AccessMode>RW</AccessMode><pPort>Device</pPort></IntReg>
  <Enumeration Name="PixelFormat"><EnumEntry Name="Mono8"><Value>0x01080001</Value></EnumEntry><EnumEntry Name="Mono16"><Value>0x01100007</Value></EnumEntry><pValue>PfReg</pValue></Enumeration>
  <IntReg Name="PfReg"><Address>0x108</Address><Length>4</Length><AccessMode>RW</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess></IntReg>
  <IntSwissKnife Name="PayloadSize"><pVariable Name="W">Width</pVariable><pVariable Name="H">Height</pVariable><pVariable Name="PF">PixelFormat</pVariable><Formula>W * H * ((PF&gt;&gt;16)&amp;0xFF) / 8</Formula></IntSwissKnife>
  <Command Name="Start"><pValue>CmdReg</pValue><CommandValue>1</CommandValue></Command>
  <IntReg Name="CmdReg"><Address>0x10C</Address><Length>4</Length><AccessMode>WO</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess></IntReg>
  <StructReg Comment="s"><Address>0x110</Address><Length>4</Length><AccessMode>RW</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess>
    <StructEntry Name="Low16"><LSB>31</LSB><MSB>16</MSB></StructEntry>
    <StructEntry Name="Bit15"><Bit>15</Bit></StructEntry>
  </StructReg>
  <Integer Name="Loop1"><pValue>Loop2</pValue></Integer>
  <Integer Name="Loop2"><pValue>Loop1</pValue></Integer>
  <Float Name="Gain"><Value>1.0</Value></Float>
  <Register Name="Lut"><Address>0x300</Address><Length>256</Length><AccessMode>RW</AccessMode><pPort>Device</pPort></Register>
  <Float Name="ExposureTime"><pValue>ExposureConv</pValue><Min>10.0</Min><Max>1e6</Max><Unit>us</Unit></Float>
  <Converter Name="ExposureConv"><pVariable Name="TICK">TickUs</pVariable><FormulaTo>FROM / TICK</FormulaTo><FormulaFrom>TO * TICK</FormulaFrom><pValue>ExposureTicks</pValue></Converter>
  <Float Name="TickUs"><Value>0.5</Value></Float>
  <IntReg Name="ExposureTicks"><Address>0x120</Address><Length>4</Length><AccessMode>RW</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess></IntReg>
  <Float Name="LineRate"><pValue>LineRateReg</pValue><Min>50</Min><Max>5000</Max><Inc>0.5</Inc><Unit>Hz</Unit></Float>
  <FloatReg Name="LineRateReg"><Address>0x130</Address><Length>4</Length><AccessMode>RW</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess></FloatReg>
  <FloatReg Name="Temp64"><Address>0x140</Address><Length>8</Length><AccessMode>RO</AccessMode><pPort>Device</pPort></FloatReg>
  <SwissKnife Name="LinePeriodUs"><pVariable Name="R">LineRate</pVariable><Constant Name="M">1e6</Constant><Formula>ROUND(M / R * 10) / 10</Formula></SwissKnife>
  <IntConverter Name="BinnedWidth"><pVariable Name="B">Binning</pVariable><FormulaTo>FROM * B</FormulaTo><FormulaFrom>TO / B</FormulaFrom><pValue>Width</pValue></IntConverter>
  <Integer Name="Binning"><Value>2</Value></Integer>
  <Integer Name="OffsetY"><pIsLocked>Locked</pIsLocked><pIsAvailable>HasOffset</pIsAvailable><Value>0</Value></Integer>
  <Integer Name="Locked"><Value>0</Value></Integer>
  <Integer Name="HasOffset"><Value>1</Value></Integer>
  <Integer Name="Fixed"><ImposedAccessMode>RO</ImposedAccessMode><Value>7</Value></Integer>
  <IntReg Name="Serial"><Address>0x200</Address><Length>4</Length><AccessMode>RO</AccessMode><pPort>Device</pPort></IntReg>
  <Port Name="Device"/>
</RegisterDescription>"#;

    #[test]
    fn features_read_and_write_registers_as_the_xml_says() {
        let mut map = NodeMap::load(XML.as_bytes()).unwrap();
        assert_eq!((map.model.as_str(), map.vendor.as_str()), ("M", "V"));
        let mut m = Mem::default();
        map.set_int(&mut m, "Width", 1536).unwrap();
        assert_eq!(m.read(0x100, 4).unwrap(), 1536u32.to_be_bytes(), "big-endian register");
        map.set_int(&mut m, "Height", 512).unwrap();
        assert_eq!(m.read(0x104, 2).unwrap(), 512u16.to_le_bytes(), "little-endian is GenApi's default");
        map.set_enum(&mut m, "PixelFormat", "Mono16").unwrap();
        assert_eq!(map.enum_entry(&mut m, "PixelFormat").unwrap(), "Mono16");
        assert_eq!(map.int(&mut m, "PayloadSize").unwrap(), 1536 * 512 * 2);
        map.execute(&mut m, "Start").unwrap();
        assert_eq!(m.read(0x10C, 4).unwrap(), [0, 0, 0, 1]);
        // struct entries: big-endian bit numbering (bit 0 is the most significant)
        map.set_int(&mut m, "Low16", 0xBEEF).unwrap();
        assert_eq!(m.read(0x110, 4).unwrap(), [0, 0, 0xBE, 0xEF]);
        map.set_int(&mut m, "Bit15", 1).unwrap();
        assert_eq!(m.read(0x110, 4).unwrap(), [0, 1, 0xBE, 0xEF]);
        assert_eq!(map.int(&mut m, "Low16").unwrap(), 0xBEEF);
        // host-side values
        map.set_int(&mut m, "SensorWidth", 1024).unwrap();
        assert!(matches!(map.set_int(&mut m, "Width", 1536), Err(GenicamError::Range { max: 1024, .. })));
    }

    #[test]
    fn refusals_say_why() {
        let mut map = NodeMap::load(XML.as_bytes()).unwrap();
        let mut m = Mem::default();
        let e = map.set_int(&mut m, "Width", 1538).unwrap_err();
        assert!(e.to_string().contains("increment 4"), "{e}");
        assert!(matches!(map.set_int(&mut m, "Width", 0), Err(GenicamError::Range { .. })));
        assert_eq!(map.set_int(&mut m, "Serial", 3), Err(GenicamError::ReadOnly("Serial".into())));
        let e = map.set_enum(&mut m, "PixelFormat", "Mono12").unwrap_err();
        assert!(e.to_string().contains("Mono8, Mono16"), "{e}");
        assert!(matches!(map.int(&mut m, "Loop1"), Err(GenicamError::Depth(_))), "a cycle ends");
        assert!(matches!(map.int(&mut m, "Lut"), Err(GenicamError::Unsupported { .. })));
        assert_eq!(map.int(&mut m, "Nope"), Err(GenicamError::Missing("Nope".into())));
        assert!(
            matches!(
                map.set_int(&mut m, "Height", 70000),
                Err(GenicamError::Range { min: 0, max: 65535, .. })
            ),
            "16-bit register"
        );
        m.write(0x108, &[0, 0, 0, 9]).unwrap();
        assert!(matches!(
            map.enum_entry(&mut m, "PixelFormat"),
            Err(GenicamError::UnknownValue { value: 9, .. })
        ));
        // A port that fails: the feature, the address and the port's own reason, typed.
        struct Refusing;
        impl Port for Refusing {
            fn read(&mut self, _: u64, len: usize) -> Result<Vec<u8>, PortError> {
                Ok(vec![0; len - 1])
            }
            fn write(&mut self, _: u64, _: &[u8]) -> Result<(), PortError> {
                Err(PortError::Refused("ACCESS_DENIED".into()))
            }
        }
        let e = map.int(&mut Refusing, "Width").unwrap_err();
        assert!(
            matches!(
                &e,
                GenicamError::Port { addr: 0x100, source: PortError::Short { got: 3, want: 4 }, .. }
            ),
            "{e}"
        );
        let e = map.set_int(&mut Refusing, "Height", 8).unwrap_err();
        assert!(matches!(&e, GenicamError::Port { source: PortError::Refused(_), .. }), "{e}");
        assert!(e.to_string().contains("ACCESS_DENIED"), "{e}");
    }

    /// Floats as line-scan detectors define them: a float through a converter to a tick
    /// register, an IEEE register with an increment, a double, a float formula, an integer
    /// converter; each read back, and refused outside its range or when read-only.
    #[test]
    fn float_features_convert_and_keep_their_ranges() {
        let mut map = NodeMap::load(XML.as_bytes()).unwrap();
        let mut m = Mem::default();
        map.set_float(&mut m, "ExposureTime", 1000.0).unwrap();
        assert_eq!(m.read(0x120, 4).unwrap(), 2000u32.to_be_bytes(), "1000 us in 0.5 us ticks");
        assert_eq!(map.float(&mut m, "ExposureTime").unwrap(), 1000.0);
        assert_eq!(map.int(&mut m, "ExposureTime").unwrap(), 1000);
        let e = map.set_float(&mut m, "ExposureTime", 5.0).unwrap_err();
        assert!(matches!(e, GenicamError::FloatRange { min: 10.0, .. }), "{e}");
        // A host-side float changes what the converter does.
        map.set_float(&mut m, "TickUs", 0.25).unwrap();
        assert_eq!(map.float(&mut m, "ExposureTime").unwrap(), 500.0, "the same 2000 ticks");

        map.set_float(&mut m, "LineRate", 2500.5).unwrap();
        assert_eq!(m.read(0x130, 4).unwrap(), 2500.5f32.to_bits().to_be_bytes());
        assert_eq!(map.float(&mut m, "LineRate").unwrap(), 2500.5);
        let e = map.set_float(&mut m, "LineRate", 2500.25).unwrap_err();
        assert!(e.to_string().contains("increment 0.5"), "{e}");
        assert!(map.set_float(&mut m, "LineRate", f64::NAN).is_err());
        let period = map.float(&mut m, "LinePeriodUs").unwrap();
        assert_eq!(period, (1e6f64 / 2500.5 * 10.0).round() / 10.0);
        assert_eq!(
            map.set_float(&mut m, "LinePeriodUs", 1.0),
            Err(GenicamError::ReadOnly("LinePeriodUs".into()))
        );

        m.write(0x140, &(-12.75f64).to_le_bytes()).unwrap();
        assert_eq!(map.float(&mut m, "Temp64").unwrap(), -12.75, "8 bytes, little-endian by default");
        assert_eq!(map.set_float(&mut m, "Temp64", 1.0), Err(GenicamError::ReadOnly("Temp64".into())));

        map.set_int(&mut m, "BinnedWidth", 768).unwrap();
        assert_eq!(map.int(&mut m, "Width").unwrap(), 1536);
        assert_eq!(map.int(&mut m, "BinnedWidth").unwrap(), 768);

        let info = map.describe(&mut m, "LineRate").unwrap();
        assert_eq!(
            (info.kind, info.value.as_deref(), info.range.as_str()),
            ("Float", Ok("2500.5 Hz"), "50 .. 5000")
        );
        let info = map.describe(&mut m, "PixelFormat").unwrap();
        assert_eq!(info.range, "{Mono8, Mono16}");
    }

    /// pIsLocked, pIsAvailable and ImposedAccessMode: a feature locked while acquiring is not
    /// written (said so, with what locks it), one not available is neither read nor written.
    #[test]
    fn locked_unavailable_and_read_only_features_are_refused_with_why() {
        let mut map = NodeMap::load(XML.as_bytes()).unwrap();
        let mut m = Mem::default();
        map.set_int(&mut m, "OffsetY", 16).unwrap();
        map.set_int(&mut m, "Locked", 1).unwrap();
        let e = map.set_int(&mut m, "OffsetY", 32).unwrap_err();
        assert_eq!(e, GenicamError::Locked { name: "OffsetY".into(), by: "Locked".into() });
        assert!(e.to_string().contains("stop acquiring"), "{e}");
        assert_eq!(map.int(&mut m, "OffsetY").unwrap(), 16, "still read while locked");
        map.set_int(&mut m, "HasOffset", 0).unwrap();
        assert!(matches!(map.int(&mut m, "OffsetY"), Err(GenicamError::NotAvailable { .. })));
        assert_eq!(map.int(&mut m, "Fixed").unwrap(), 7);
        assert_eq!(map.set_int(&mut m, "Fixed", 8), Err(GenicamError::ReadOnly("Fixed".into())));
    }

    #[test]
    fn float_formulas_have_genapis_functions_and_literals() {
        let f = |s: &str| formula::parse(s).unwrap().eval_f64(&[("X", 2.0)]).unwrap();
        assert_eq!(f("1.5e3 + .5"), 1500.5);
        assert_eq!(f("X ** 0.5"), 2f64.sqrt());
        assert_eq!(f("SQRT(16) + LN(E) + ROUND(2.5) + TRUNC(-1.5)"), 4.0 + 1.0 + 3.0 - 1.0);
        assert!((f("ATAN(1) * 4") - std::f64::consts::PI).abs() < 1e-12);
        assert_eq!(f("(X > 1.5) ? 1.5 : 2.5"), 1.5);
        assert_eq!(f("7 & 3.9"), 3.0, "bitwise on the integer part");
        assert_eq!(f("0x1F + 1"), 32.0);
        assert_eq!(f("FLOOR(-0.5) + CEIL(0.5) + SGN(-3) + ABS(-2)"), -1.0 + 1.0 - 1.0 + 2.0);
        assert!(formula::parse("1 / 0").unwrap().eval_f64(&[]).is_err());
        assert!(formula::parse("SQRT(-1)").unwrap().eval_f64(&[]).is_err(), "not a number");
        assert!(formula::parse("1.5").unwrap().eval(&[]).is_err(), "no float in an integer formula");
        assert!(formula::parse("12abc").is_err());
        assert_eq!(formula::parse("0x10 + 2").unwrap().eval(&[]).unwrap(), 18);
    }

    /// A port that counts the device's reads.
    struct Counted(Mem, usize);

    impl Port for Counted {
        fn read(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, PortError> {
            self.1 += 1;
            self.0.read(addr, len)
        }
        fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), PortError> {
            self.0.write(addr, data)
        }
    }

    const SELECTED: &str = r#"<?xml version="1.0"?>
<RegisterDescription ModelName="M" VendorName="V">
  <Enumeration Name="EnergySelector"><pSelected>Gain</pSelected><pSelected>Offset</pSelected>
    <EnumEntry Name="High"><Value>0</Value></EnumEntry><EnumEntry Name="Low"><Value>1</Value></EnumEntry>
    <pValue>SelReg</pValue></Enumeration>
  <IntReg Name="SelReg"><Address>0x10</Address><Length>4</Length><AccessMode>RW</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess></IntReg>
  <Float Name="Gain"><pValue>GainReg</pValue><Min>0.5</Min><Max>8</Max></Float>
  <FloatReg Name="GainReg"><Address>0x20</Address><pIndex Offset="4">EnergySelector</pIndex><Length>4</Length><AccessMode>RW</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess></FloatReg>
  <Integer Name="Offset"><pValue>OffsetReg</pValue></Integer>
  <IntReg Name="OffsetReg"><Address>0x30</Address><pIndex Offset="4">EnergySelector</pIndex><Length>4</Length><AccessMode>RW</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess><Cachable>WriteAround</Cachable></IntReg>
  <Integer Name="Status"><pValue>StatusReg</pValue></Integer>
  <IntReg Name="StatusReg"><Address>0x40</Address><Length>4</Length><AccessMode>RO</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess><Cachable>NoCache</Cachable></IntReg>
  <Command Name="Reset"><pValue>ResetReg</pValue><CommandValue>1</CommandValue></Command>
  <IntReg Name="ResetReg"><Address>0x50</Address><Length>4</Length><AccessMode>WO</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess><Cachable>NoCache</Cachable></IntReg>
  <Integer Name="Temperature"><pValue>TempReg</pValue></Integer>
  <IntReg Name="TempReg"><Address>0x60</Address><Length>4</Length><AccessMode>RO</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess><PollingTime>40</PollingTime><pInvalidator>Reset</pInvalidator></IntReg>
  <Port Name="Device"/>
</RegisterDescription>"#;

    #[test]
    fn a_selector_moves_its_features_to_their_own_registers() {
        let mut map = NodeMap::load(SELECTED.as_bytes()).unwrap();
        assert_eq!(map.selectors(), &[("EnergySelector".to_string(), vec!["Gain".into(), "Offset".into()])]);
        let mut port = Mem(HashMap::new());
        map.set_float(&mut port, "Gain", 2.0).unwrap();
        map.set_enum(&mut port, "EnergySelector", "Low").unwrap();
        map.set_float(&mut port, "Gain", 4.5).unwrap();
        map.set_int(&mut port, "Offset", 300).unwrap();
        // Each energy's gain in its own register: 0x20 (High) and 0x24 (Low).
        assert_eq!(port.read(0x20, 4).unwrap(), 2.0f32.to_be_bytes());
        assert_eq!(port.read(0x24, 4).unwrap(), 4.5f32.to_be_bytes());
        assert_eq!(port.read(0x34, 4).unwrap(), 300u32.to_be_bytes());
        assert_eq!(map.float(&mut port, "Gain").unwrap(), 4.5);
        map.set_enum(&mut port, "EnergySelector", "High").unwrap();
        assert_eq!(map.float(&mut port, "Gain").unwrap(), 2.0);
        assert_eq!(map.int(&mut port, "Offset").unwrap(), 0);
        assert!(map.set_float(&mut port, "Gain", 9.0).is_err(), "the range holds for every entry");
    }

    #[test]
    fn the_cache_answers_what_may_be_cached_and_forgets_what_a_write_makes_stale() {
        let mut map = NodeMap::load(SELECTED.as_bytes()).unwrap();
        let mut port = Counted(Mem(HashMap::new()), 0);
        let reads = |map: &NodeMap, port: &mut Counted, name: &str| {
            let before = port.1;
            map.int(port, name).unwrap();
            port.1 - before
        };
        // Off by default: every read goes to the device.
        assert_eq!(reads(&map, &mut port, "Offset"), 2, "the selector, then the register");
        assert_eq!(reads(&map, &mut port, "Offset"), 2);
        map.set_caching(true);
        assert_eq!(reads(&map, &mut port, "Offset"), 2);
        assert_eq!(reads(&map, &mut port, "Offset"), 0, "both from the cache");
        // A status register the device changes by itself is never cached.
        port.0.write(0x40, &7u32.to_be_bytes()).unwrap();
        assert_eq!(map.int(&mut port, "Status").unwrap(), 7);
        port.0.write(0x40, &8u32.to_be_bytes()).unwrap();
        assert_eq!(map.int(&mut port, "Status").unwrap(), 8);
        // WriteThrough (the selector): a value written is the value; WriteAround (Offset): read
        // back from the device, which may have adjusted it.
        map.set_enum(&mut port, "EnergySelector", "Low").unwrap();
        assert_eq!(reads(&map, &mut port, "EnergySelector"), 0);
        map.set_int(&mut port, "Offset", 5).unwrap();
        port.0.write(0x34, &4u32.to_be_bytes()).unwrap(); // the device rounds to its step
        assert_eq!(map.int(&mut port, "Offset").unwrap(), 4);
        // Selected registers are cached each at its own address.
        map.set_enum(&mut port, "EnergySelector", "High").unwrap();
        assert_eq!(map.int(&mut port, "Offset").unwrap(), 0);
        map.set_enum(&mut port, "EnergySelector", "Low").unwrap();
        assert_eq!(reads(&map, &mut port, "Offset"), 0);
        assert_eq!(map.int(&mut port, "Offset").unwrap(), 4);
        // A polled register is read again once its polling time has passed; one a command
        // invalidates, at once.
        port.0.write(0x60, &30u32.to_be_bytes()).unwrap();
        assert_eq!(map.int(&mut port, "Temperature").unwrap(), 30);
        port.0.write(0x60, &31u32.to_be_bytes()).unwrap();
        assert_eq!(map.int(&mut port, "Temperature").unwrap(), 30, "within its polling time");
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(map.int(&mut port, "Temperature").unwrap(), 31);
        port.0.write(0x60, &20u32.to_be_bytes()).unwrap();
        map.execute(&mut port, "Reset").unwrap();
        assert_eq!(map.int(&mut port, "Temperature").unwrap(), 20);
        // A reconnect forgets everything.
        port.0.write(0x34, &9u32.to_be_bytes()).unwrap();
        map.invalidate();
        assert_eq!(map.int(&mut port, "Offset").unwrap(), 9);
    }

    #[test]
    fn hostile_xml_is_refused() {
        let dtd = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><RegisterDescription/>"#;
        assert!(NodeMap::load(dtd.as_bytes()).is_err(), "no DTD, no entity expansion");
        assert!(NodeMap::load(b"<Other/>").is_err());
        assert!(NodeMap::load(b"\xff\xfe").is_err());
        assert!(NodeMap::load(b"PK\x03\x04garbage").is_err());
        let bad =
            r#"<RegisterDescription><IntReg Name="X"><Address>zz</Address></IntReg></RegisterDescription>"#;
        assert!(NodeMap::load(bad.as_bytes()).unwrap_err().to_string().contains("X"));
        let len = r#"<RegisterDescription><IntReg Name="X"><Address>0</Address><Length>4000000000</Length></IntReg></RegisterDescription>"#;
        let map = NodeMap::load(len.as_bytes()).unwrap();
        assert!(matches!(map.int(&mut Mem::default(), "X"), Err(GenicamError::Register { .. })));
    }

    #[test]
    fn zipped_xml_loads_like_plain() {
        use std::io::Write;
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file("Device.xml", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(XML.as_bytes()).unwrap();
        z.finish().unwrap();
        let map = NodeMap::load(buf.get_ref()).unwrap();
        assert_eq!(map.model, "M");
        assert!(map.has("PayloadSize"));
    }

    #[test]
    fn formulas_follow_c_precedence() {
        let f = |s: &str| formula::parse(s).and_then(|e| e.eval(&[("A", 6), ("B", 4)]));
        assert_eq!(f("A + B * 2"), Ok(14));
        assert_eq!(f("(A + B) * 2"), Ok(20));
        assert_eq!(f("A - B - 1"), Ok(1), "left-associative");
        assert_eq!(f("2 ** 3 ** 2"), Ok(512), "power is right-associative");
        assert_eq!(f("A > B ? A : B"), Ok(6));
        assert_eq!(f("A = 6 && B <> 4"), Ok(0));
        assert_eq!(f("0x1000 >> 4 | 1"), Ok(0x101));
        assert_eq!(f("-A + ~0"), Ok(-7));
        assert_eq!(f("ABS(B - A)"), Ok(2));
        assert_eq!(f("A / (B - 4)"), Err("division by zero".into()));
        assert!(f("A +").is_err());
        assert!(f("C").is_err());
        assert!(f(&"(".repeat(1000)).is_err(), "depth is bounded");
        assert!(f("1 << 64").is_err());
    }
}
