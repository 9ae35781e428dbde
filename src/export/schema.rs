//! A collection's schema, inferred from every document it exports, and `<db>/<coll>/.schema.json`.
//!
//! [`Stats`] is fed each document's BSON bytes ([`Stats::observe`]) and keeps, per field path,
//! how many values of each BSON type it saw, how often the field was missing, the binary
//! subtypes and decimal exponents seen, and the field order. [`Stats::columns`] then decides
//! each field's [`Column`] — its Arrow type and how a BSON value maps to it — under these rules
//! (README "Parquet export" documents them for users):
//!
//! - one BSON type per field, always: int32 → Int32, int64 → Int64, double → Float64, string →
//!   Utf8, bool → Boolean, date → Timestamp(ms, UTC), ObjectId → Utf8 of its 24 lowercase hex
//!   digits (readable and comparable in SQL, which a 12-byte binary is not), binary of one
//!   subtype → Binary (the subtype in the schema), decimal128 → Decimal128(38, s) when every
//!   value is finite, not -0, and has the same exponent -s with 0 ≤ s ≤ 38, else Utf8 of its
//!   decimal text (`1.50`, `NaN`, `1E+3`) which is exact; a document → Struct, an array → List;
//! - anything else becomes a JSON column: Utf8 holding the value's canonical Extended JSON,
//!   written by [`crate::extjson`], so nothing is lost. That is a field with two or more types
//!   (int32 and int64 included: widening would lose the type), the types with no Arrow
//!   counterpart (regex, timestamp, JavaScript, symbol, DBPointer, min/max key, undefined,
//!   binary subtype 2), sub-documents nested deeper than [`MAX_DEPTH`], with more than
//!   [`MAX_FIELDS`] distinct names (maps keyed by data), with a key twice, with fields in
//!   orders that disagree, or always empty;
//! - Arrow null means *missing* for a field that is sometimes missing and never BSON null, and
//!   BSON null for one that is sometimes null and never missing; a field that is both missing
//!   and null somewhere is a JSON column (JSON `null` is BSON null, Arrow null is missing).
//!
//! One streaming pass over every document, not a sample: a sample would need a fallback when a
//! later document does not fit, and with Parquet's fixed per-file schema that means either
//! rewriting files or files of one collection with different schemas, which Athena and Spark
//! read badly. Every document is read anyway; the cost is a second read of the source for
//! Parquet exports (the JSON path infers during its only pass). Memory is bounded by the number
//! of distinct field paths, capped at [`MAX_NODES`] per collection (beyond that, a new field's
//! parent becomes a JSON column).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Sub-documents deeper than this (the top level is depth 0) are JSON columns.
pub const MAX_DEPTH: usize = 16;
/// A sub-document with more distinct field names than this is a JSON column.
pub const MAX_FIELDS: usize = 512;
/// The top level's limit: past it the whole document is one JSON column ([`DOCUMENT_COLUMN`]).
pub const MAX_TOP_LEVEL_FIELDS: usize = 4096;
/// Field paths tracked per collection, bounding memory whatever the data.
pub const MAX_NODES: usize = 100_000;
/// The one column of a collection whose top level is irregular.
pub const DOCUMENT_COLUMN: &str = "document";
/// The object name, in each collection's folder.
pub const SCHEMA_FILE: &str = ".schema.json";

/// BSON element types, by the index [`slot`] gives them.
const TYPE_NAMES: [&str; 22] = [
    "eoo",
    "double",
    "string",
    "object",
    "array",
    "binData",
    "undefined",
    "objectId",
    "bool",
    "date",
    "null",
    "regex",
    "dbPointer",
    "javascript",
    "symbol",
    "javascriptWithScope",
    "int",
    "timestamp",
    "long",
    "decimal",
    "minKey",
    "maxKey",
];

fn slot(tag: u8) -> usize {
    match tag {
        0x01..=0x13 => tag as usize,
        0xFF => 20,
        0x7F => 21,
        _ => 0,
    }
}

/// The BSON type name (as `$type` spells it) of an element type byte.
pub fn type_name(tag: u8) -> &'static str {
    TYPE_NAMES[slot(tag)]
}

/// A BSON element that cannot be walked: the document did not pass the encoder's validation,
/// which runs before inference, so this is a bug or a corrupt source.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("malformed BSON at byte {0} of a document")]
pub struct Malformed(pub usize);

/// One element of a document: type byte, key and value bytes.
pub struct Element<'a> {
    pub tag: u8,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// The elements of a document or array (its bytes, length prefix and final 0 included).
pub fn elements(doc: &[u8]) -> Elements<'_> {
    Elements { doc, pos: 4 }
}

pub struct Elements<'a> {
    doc: &'a [u8],
    pos: usize,
}

fn le_i32(bytes: &[u8], pos: usize) -> Result<usize, Malformed> {
    let b = bytes.get(pos..pos + 4).ok_or(Malformed(pos))?;
    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    usize::try_from(v).map_err(|_| Malformed(pos))
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Element<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let doc = self.doc;
        let tag = *doc.get(self.pos)?;
        if tag == 0 {
            return None;
        }
        let start = self.pos;
        let step = || -> Result<(Element<'a>, usize), Malformed> {
            let key_start = start + 1;
            let key_len = doc
                .get(key_start..)
                .and_then(|rest| rest.iter().position(|&b| b == 0))
                .ok_or(Malformed(key_start))?;
            let key = &doc[key_start..key_start + key_len];
            let v = key_start + key_len + 1;
            let size = match tag {
                0x01 | 0x09 | 0x11 | 0x12 => 8,
                0x02 | 0x0D | 0x0E => 4 + le_i32(doc, v)?,
                0x03 | 0x04 | 0x0F => le_i32(doc, v)?,
                0x05 => 5 + le_i32(doc, v)?,
                0x06 | 0x0A | 0xFF | 0x7F => 0,
                0x07 => 12,
                0x08 => 1,
                0x0B => {
                    let rest = doc.get(v..).ok_or(Malformed(v))?;
                    let a = rest.iter().position(|&b| b == 0).ok_or(Malformed(v))?;
                    let b = rest[a + 1..]
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(Malformed(v))?;
                    a + 1 + b + 1
                }
                0x0C => 4 + le_i32(doc, v)? + 12,
                0x10 => 4,
                0x13 => 16,
                _ => return Err(Malformed(start)),
            };
            let value = doc.get(v..v + size).ok_or(Malformed(v))?;
            Ok((Element { tag, key, value }, v + size))
        };
        match step() {
            Ok((element, next)) => {
                self.pos = next;
                Some(Ok(element))
            }
            Err(e) => {
                self.pos = doc.len();
                Some(Err(e))
            }
        }
    }
}

/// A decimal128's sign, coefficient and exponent; `None` for NaN and the infinities.
pub fn decimal_parts(bytes: &[u8; 16]) -> Option<(bool, u128, i32)> {
    let v = u128::from_le_bytes(*bytes);
    if (v >> 123) & 0xF == 0xF {
        return None;
    }
    let negative = v >> 127 == 1;
    let (biased, coefficient) = if (v >> 125) & 0b11 == 0b11 {
        (((v >> 111) & 0x3FFF) as i32, 0)
    } else {
        let c = v & ((1u128 << 113) - 1);
        let max = 10u128.pow(34) - 1;
        (((v >> 113) & 0x3FFF) as i32, if c > max { 0 } else { c })
    };
    Some((negative, coefficient, biased - 6176))
}

/// Whether a decimal128 fits Decimal128(38, -exponent) exactly, and its exponent.
fn decimal_exact_exponent(value: &[u8]) -> Option<i32> {
    let bytes: &[u8; 16] = value.try_into().ok()?;
    let (negative, coefficient, exponent) = decimal_parts(bytes)?;
    if negative && coefficient == 0 {
        return None;
    }
    (-38..=0).contains(&exponent).then_some(exponent)
}

/// What was seen of one field path.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Values per BSON type (indexed by [`slot`]).
    counts: Vec<u64>,
    /// Binary subtypes seen (a bit per subtype).
    #[serde(default)]
    subtypes: [u64; 4],
    /// Decimal values: the one exponent all exact ones share, and whether any is not exact
    /// or two exponents differ.
    #[serde(default)]
    decimal_exponent: Option<i32>,
    #[serde(default)]
    decimal_inexact: bool,
    /// Sub-documents: their fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fields: Option<Box<Fields>>,
    /// Arrays: their elements, all as one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    elements: Option<Box<Node>>,
    /// Why the sub-documents cannot be a struct (a key twice, too many names, orders that
    /// disagree, too deep), if they cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    irregular: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Fields {
    /// Children by id, in the order they were first seen.
    names: Vec<String>,
    nodes: Vec<Node>,
    /// Ids in field order: a field first seen after field `p` goes right after `p`.
    order: Vec<usize>,
    #[serde(skip)]
    index: HashMap<Box<[u8]>, usize>,
    /// Position of each id in `order`.
    #[serde(skip)]
    position: Vec<usize>,
    /// The document instance that last had each id (finds a key twice in one document).
    #[serde(skip)]
    seen_in: Vec<u64>,
}

impl Fields {
    /// Rebuilds what serialization drops.
    fn reindex(&mut self) {
        if self.index.len() == self.names.len() && self.position.len() == self.names.len() {
            return;
        }
        self.index = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_bytes().to_vec().into_boxed_slice(), i))
            .collect();
        self.reposition();
        self.seen_in = vec![0; self.names.len()];
    }

    fn reposition(&mut self) {
        self.position = vec![0; self.names.len()];
        for (p, &id) in self.order.iter().enumerate() {
            self.position[id] = p;
        }
    }

    /// The id of `key`, added right after `after` (or first) when new.
    fn child(&mut self, key: &[u8], after: Option<usize>) -> usize {
        if let Some(&id) = self.index.get(key) {
            return id;
        }
        let id = self.names.len();
        self.names.push(String::from_utf8_lossy(key).into_owned());
        self.nodes.push(Node::default());
        self.index.insert(key.to_vec().into_boxed_slice(), id);
        self.seen_in.push(0);
        let at = after.map_or(0, |p| self.position[p] + 1);
        self.order.insert(at, id);
        self.reposition();
        id
    }
}

/// Counters shared by a collection's nodes while observing.
struct Walk {
    /// Increments per sub-document instance.
    instance: u64,
    nodes: usize,
}

impl Node {
    fn counts_mut(&mut self) -> &mut Vec<u64> {
        if self.counts.len() < TYPE_NAMES.len() {
            self.counts.resize(TYPE_NAMES.len(), 0);
        }
        &mut self.counts
    }

    fn count(&self, tag: u8) -> u64 {
        self.counts.get(slot(tag)).copied().unwrap_or(0)
    }

    /// Values seen, of any type (missing not included).
    pub fn present(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn irregular(&mut self, why: &str) {
        self.irregular.get_or_insert_with(|| why.to_string());
    }

    fn observe(
        &mut self,
        tag: u8,
        value: &[u8],
        depth: usize,
        walk: &mut Walk,
        width: usize,
    ) -> Result<(), Malformed> {
        self.counts_mut()[slot(tag)] += 1;
        match tag {
            0x05 => {
                if let Some(&subtype) = value.get(4) {
                    self.subtypes[usize::from(subtype / 64)] |= 1 << (subtype % 64);
                }
            }
            0x13 => match (decimal_exact_exponent(value), self.decimal_exponent) {
                (Some(e), None) if !self.decimal_inexact => self.decimal_exponent = Some(e),
                (Some(e), Some(seen)) if e == seen => {}
                _ => {
                    self.decimal_inexact = true;
                    self.decimal_exponent = None;
                }
            },
            0x03 => self.observe_document(value, depth + 1, walk, width)?,
            0x04 => {
                let elements = self.elements.get_or_insert_with(Box::default);
                for element in self::elements(value) {
                    let element = element?;
                    elements.observe(element.tag, element.value, depth + 1, walk, MAX_FIELDS)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn observe_document(
        &mut self,
        doc: &[u8],
        depth: usize,
        walk: &mut Walk,
        width: usize,
    ) -> Result<(), Malformed> {
        if self.irregular.is_some() {
            // Its value is a JSON column: only its type counts matter now.
            return Ok(());
        }
        if depth > MAX_DEPTH {
            self.irregular("nested deeper than the schema follows");
            return Ok(());
        }
        walk.instance += 1;
        let instance = walk.instance;
        let fields = self.fields.get_or_insert_with(Box::default);
        fields.reindex();
        let mut previous: Option<usize> = None;
        let mut why = None;
        for element in elements(doc) {
            let element = element?;
            let known = fields.index.contains_key(element.key);
            if !known && (fields.names.len() >= width || walk.nodes >= MAX_NODES) {
                why = Some("too many distinct field names");
                break;
            }
            if !known {
                walk.nodes += 1;
            }
            let id = fields.child(element.key, previous);
            if fields.seen_in[id] == instance {
                why = Some("a field name twice in one document");
                break;
            }
            fields.seen_in[id] = instance;
            if let Some(p) = previous
                && fields.position[id] < fields.position[p]
            {
                why = Some("documents disagree on field order");
                break;
            }
            previous = Some(id);
            fields.nodes[id].observe(element.tag, element.value, depth, walk, MAX_FIELDS)?;
        }
        if let Some(why) = why {
            // The children are no longer needed: the value will be JSON.
            self.fields = None;
            self.irregular(why);
        }
        Ok(())
    }

    fn merge(&mut self, other: &Node) {
        let counts = self.counts_mut();
        for (i, c) in other.counts.iter().enumerate() {
            if let Some(slot) = counts.get_mut(i) {
                *slot += c;
            }
        }
        for i in 0..4 {
            self.subtypes[i] |= other.subtypes[i];
        }
        let had_decimals = self.count(0x13) > other.count(0x13);
        if other.decimal_inexact
            || (had_decimals
                && other.count(0x13) > 0
                && self.decimal_exponent != other.decimal_exponent)
        {
            self.decimal_inexact = true;
            self.decimal_exponent = None;
        } else if !had_decimals {
            self.decimal_exponent = other.decimal_exponent;
        }
        if let Some(why) = &other.irregular {
            self.irregular(why);
            self.fields = None;
        }
        if let Some(theirs) = &other.elements {
            self.elements.get_or_insert_with(Box::default).merge(theirs);
        }
        if self.irregular.is_some() {
            return;
        }
        if let Some(theirs) = &other.fields {
            let ours = self.fields.get_or_insert_with(Box::default);
            ours.reindex();
            let mut previous = None;
            for &id in &theirs.order {
                let name = theirs.names[id].as_bytes();
                let mine = ours.child(name, previous);
                ours.nodes[mine].merge(&theirs.nodes[id]);
                previous = Some(mine);
            }
        }
    }
}

/// The statistics of one collection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub documents: u64,
    root: Node,
    /// Sub-document instances seen, and field paths tracked (rebuilt after deserializing).
    #[serde(skip)]
    instance: u64,
    #[serde(skip)]
    nodes: Option<usize>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            documents: 0,
            root: Node::default(),
            instance: 0,
            nodes: Some(0),
        }
    }

    /// Counts one (already validated) document.
    pub fn observe(&mut self, doc: &[u8]) -> Result<(), Malformed> {
        self.documents += 1;
        let mut walk = Walk {
            instance: self.instance,
            nodes: match self.nodes {
                Some(n) => n,
                None => count_nodes(&self.root),
            },
        };
        self.root.counts_mut()[slot(0x03)] += 1;
        let result = self
            .root
            .observe_document(doc, 0, &mut walk, MAX_TOP_LEVEL_FIELDS);
        self.instance = walk.instance;
        self.nodes = Some(walk.nodes);
        result
    }

    /// Adds another replica set's statistics of the same collection.
    pub fn merge(&mut self, other: &Stats) {
        self.documents += other.documents;
        self.root.merge(&other.root);
        self.nodes = None;
    }

    /// The columns of the collection's rows, in field order.
    pub fn columns(&self) -> Vec<Column> {
        if self.root.irregular.is_some() {
            return vec![Column {
                name: DOCUMENT_COLUMN.into(),
                kind: Kind::Json,
                nulls: Nulls::Never,
            }];
        }
        let Some(fields) = &self.root.fields else {
            return Vec::new();
        };
        fields_columns(fields, self.root.count(0x03), 1)
    }
}

fn count_nodes(node: &Node) -> usize {
    let mut n = 0;
    if let Some(f) = &node.fields {
        n += f.nodes.len();
        n += f.nodes.iter().map(count_nodes).sum::<usize>();
    }
    if let Some(e) = &node.elements {
        n += 1 + count_nodes(e);
    }
    n
}

/// What an Arrow null in a column stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    /// Never null.
    Never,
    /// The field is missing from the document.
    Missing,
    /// The field is BSON null.
    Null,
}

/// How a field's values are stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Bool,
    Int32,
    Int64,
    Double,
    String,
    /// ObjectId as 24 lowercase hex digits.
    ObjectIdHex,
    /// Timestamp(ms, UTC).
    Date,
    Binary {
        subtype: u8,
    },
    /// Decimal128(38, scale).
    Decimal {
        scale: i8,
    },
    /// A decimal128 as its decimal text.
    DecimalString,
    Struct(Vec<Column>),
    List(Box<Column>),
    /// Canonical Extended JSON of the value.
    Json,
}

/// One column (or struct field, or list element) of the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub nulls: Nulls,
}

fn fields_columns(fields: &Fields, parents: u64, depth: usize) -> Vec<Column> {
    fields
        .order
        .iter()
        .map(|&id| {
            let node = &fields.nodes[id];
            let missing = parents.saturating_sub(node.present());
            column(&fields.names[id], node, missing > 0, depth)
        })
        .collect()
}

fn column(name: &str, node: &Node, sometimes_missing: bool, depth: usize) -> Column {
    let null = node.count(0x0A) > 0;
    let json = |nulls| Column {
        name: name.to_string(),
        kind: Kind::Json,
        nulls,
    };
    if sometimes_missing && null {
        return json(Nulls::Missing);
    }
    let nulls = if sometimes_missing {
        Nulls::Missing
    } else if null {
        Nulls::Null
    } else {
        Nulls::Never
    };
    let types: Vec<u8> = (1..=0x13u8)
        .chain([0x7F, 0xFF])
        .filter(|&t| t != 0x0A && node.count(t) > 0)
        .collect();
    let [tag] = types[..] else {
        return json(nulls);
    };
    let kind = match tag {
        0x01 => Kind::Double,
        0x02 => Kind::String,
        0x07 => Kind::ObjectIdHex,
        0x08 => Kind::Bool,
        0x09 => Kind::Date,
        0x10 => Kind::Int32,
        0x12 => Kind::Int64,
        0x05 => {
            let subtypes: Vec<u8> = (0..=255u8)
                .filter(|s| node.subtypes[usize::from(s / 64)] & (1 << (s % 64)) != 0)
                .collect();
            match subtypes[..] {
                [s] if s != 2 => Kind::Binary { subtype: s },
                _ => Kind::Json,
            }
        }
        0x13 => match (node.decimal_inexact, node.decimal_exponent) {
            (false, Some(e)) => Kind::Decimal { scale: (-e) as i8 },
            _ => Kind::DecimalString,
        },
        0x03 => match (&node.irregular, &node.fields) {
            (None, Some(fields)) if !fields.order.is_empty() && depth <= MAX_DEPTH => {
                Kind::Struct(fields_columns(fields, node.count(0x03), depth + 1))
            }
            _ => Kind::Json,
        },
        0x04 => match &node.elements {
            Some(elements) if elements.present() > 0 => {
                Kind::List(Box::new(column("element", elements, false, depth + 1)))
            }
            _ => Kind::Json,
        },
        _ => Kind::Json,
    };
    Column {
        name: name.to_string(),
        kind,
        nulls,
    }
}

impl Kind {
    /// The Athena (Hive) type.
    pub fn hive(&self) -> String {
        match self {
            Kind::Bool => "boolean".into(),
            Kind::Int32 => "int".into(),
            Kind::Int64 => "bigint".into(),
            Kind::Double => "double".into(),
            Kind::String | Kind::ObjectIdHex | Kind::DecimalString | Kind::Json => "string".into(),
            Kind::Date => "timestamp".into(),
            Kind::Binary { .. } => "binary".into(),
            Kind::Decimal { scale } => format!("decimal(38,{scale})"),
            Kind::Struct(columns) => format!(
                "struct<{}>",
                columns
                    .iter()
                    .map(|c| format!("{}:{}", c.name, c.kind.hive()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Kind::List(element) => format!("array<{}>", element.kind.hive()),
        }
    }

    /// The name of the mapping, for `.schema.json`.
    fn describe(&self) -> Value {
        match self {
            Kind::Bool => json!({"arrow": "Boolean", "bson": "bool"}),
            Kind::Int32 => json!({"arrow": "Int32", "bson": "int"}),
            Kind::Int64 => json!({"arrow": "Int64", "bson": "long"}),
            Kind::Double => json!({"arrow": "Float64", "bson": "double"}),
            Kind::String => json!({"arrow": "Utf8", "bson": "string"}),
            Kind::ObjectIdHex => json!({"arrow": "Utf8", "bson": "objectId", "encoding": "hex"}),
            Kind::Date => json!({"arrow": "Timestamp(ms, UTC)", "bson": "date"}),
            Kind::Binary { subtype } => {
                json!({"arrow": "Binary", "bson": "binData", "subtype": subtype})
            }
            Kind::Decimal { scale } => {
                json!({"arrow": format!("Decimal128(38, {scale})"), "bson": "decimal"})
            }
            Kind::DecimalString => {
                json!({"arrow": "Utf8", "bson": "decimal", "encoding": "decimal text"})
            }
            Kind::Struct(_) => json!({"arrow": "Struct", "bson": "object"}),
            Kind::List(_) => json!({"arrow": "List", "bson": "array"}),
            Kind::Json => {
                json!({"arrow": "Utf8", "bson": "any", "encoding": "canonical extended json"})
            }
        }
    }
}

/// A column name quoted for Hive DDL.
fn hive_name(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn describe_columns(columns: &[Column], fields: Option<&Fields>, parents: u64) -> Vec<Value> {
    columns
        .iter()
        .map(|c| {
            let node = fields.and_then(|f| {
                let id = f.names.iter().position(|n| *n == c.name)?;
                Some(&f.nodes[id])
            });
            describe_column(c, node, parents)
        })
        .collect()
}

fn describe_column(column: &Column, node: Option<&Node>, parents: u64) -> Value {
    let mut out = column.kind.describe();
    out["name"] = json!(column.name);
    out["nullMeans"] = json!(match column.nulls {
        Nulls::Never => "never null",
        Nulls::Missing => "missing",
        Nulls::Null => "null",
    });
    if let Some(node) = node {
        let types: BTreeMap<&str, u64> = TYPE_NAMES
            .iter()
            .zip(node.counts.iter())
            .filter(|(_, c)| **c > 0)
            .map(|(n, c)| (*n, *c))
            .collect();
        out["stats"] = json!({
            "present": node.present(),
            "missing": parents.saturating_sub(node.present()),
            "types": types,
        });
        if let Some(why) = &node.irregular {
            out["stats"]["irregular"] = json!(why);
        }
    }
    match &column.kind {
        Kind::Struct(children) => {
            let parents = node.map_or(0, |n| n.count(0x03));
            out["fields"] = json!(describe_columns(
                children,
                node.and_then(|n| n.fields.as_deref()),
                parents
            ));
        }
        Kind::List(element) => {
            let inner = node.and_then(|n| n.elements.as_deref());
            out["element"] = describe_column(element, inner, 0);
        }
        _ => {}
    }
    out
}

/// The content of `<db>/<coll>/.schema.json`.
pub fn schema_document(
    db: &str,
    collection: &str,
    stats: &Stats,
    format: &str,
    table_location: &str,
) -> Value {
    let columns = stats.columns();
    let fields = describe_columns(&columns, stats.root.fields.as_deref(), stats.documents);
    json!({
        "formatVersion": 1,
        "database": db,
        "collection": collection,
        "exportFormat": format,
        "documents": stats.documents,
        // The top level is irregular: each row is one JSON column `document`.
        "wholeDocument": stats.root.irregular.is_some(),
        "fields": fields,
        "athenaDdl": athena_ddl(db, collection, &columns, table_location),
    })
}

/// `CREATE EXTERNAL TABLE` for the collection's Parquet files under `location`.
pub fn athena_ddl(db: &str, collection: &str, columns: &[Column], location: &str) -> String {
    let table: String = format!("{db}_{collection}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let body = columns
        .iter()
        .map(|c| format!("  {} {}", hive_name(&c.name), c.kind.hive()))
        .collect::<Vec<_>>()
        .join(",\n");
    format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS `{table}` (\n{body}\n)\nSTORED AS PARQUET\nLOCATION '{}'",
        location.replace('\'', "''")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{Bson, doc};

    fn stats(docs: &[bson::Document]) -> Stats {
        let mut stats = Stats::new();
        for d in docs {
            stats.observe(&d.to_vec().unwrap()).unwrap();
        }
        stats
    }

    fn kinds(stats: &Stats) -> Vec<(String, Kind, Nulls)> {
        stats
            .columns()
            .into_iter()
            .map(|c| (c.name, c.kind, c.nulls))
            .collect()
    }

    #[test]
    fn one_type_per_field_maps_to_its_arrow_type() {
        let oid = bson::oid::ObjectId::new();
        let s = stats(&[
            doc! {"_id": oid, "n": 1, "l": 2i64, "d": 1.5, "s": "x", "b": true,
            "t": bson::DateTime::from_millis(5)},
        ]);
        let k = kinds(&s);
        assert_eq!(
            k.iter().map(|(_, k, _)| k.clone()).collect::<Vec<_>>(),
            vec![
                Kind::ObjectIdHex,
                Kind::Int32,
                Kind::Int64,
                Kind::Double,
                Kind::String,
                Kind::Bool,
                Kind::Date
            ]
        );
        assert!(k.iter().all(|(_, _, n)| *n == Nulls::Never));
    }

    #[test]
    fn mixed_types_and_int32_with_int64_become_json() {
        let s = stats(&[doc! {"a": 1, "b": 1}, doc! {"a": "x", "b": 2i64}]);
        assert_eq!(
            kinds(&s),
            vec![
                ("a".into(), Kind::Json, Nulls::Never),
                ("b".into(), Kind::Json, Nulls::Never)
            ]
        );
    }

    #[test]
    fn arrow_null_means_missing_or_null_and_both_at_once_is_json() {
        let s = stats(&[
            doc! {"m": 1, "n": Bson::Null, "both": 1},
            doc! {"n": 2, "both": Bson::Null},
            doc! {"n": 3},
        ]);
        assert_eq!(
            kinds(&s),
            vec![
                ("m".into(), Kind::Int32, Nulls::Missing),
                ("n".into(), Kind::Int32, Nulls::Null),
                ("both".into(), Kind::Json, Nulls::Missing)
            ]
        );
    }

    #[test]
    fn a_field_first_seen_later_keeps_its_place_between_its_neighbours() {
        let s = stats(&[doc! {"a": 1, "c": 1}, doc! {"a": 1, "b": 1, "c": 1}]);
        let names: Vec<_> = s.columns().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn sub_documents_whose_field_orders_disagree_are_json() {
        let s = stats(&[doc! {"x": {"a": 1, "b": 1}}, doc! {"x": {"b": 1, "a": 1}}]);
        assert_eq!(kinds(&s), vec![("x".into(), Kind::Json, Nulls::Never)]);
    }

    #[test]
    fn nesting_past_the_limit_is_json_at_the_limit() {
        let mut d = doc! {"leaf": 1};
        for _ in 0..(MAX_DEPTH + 3) {
            d = doc! {"x": d};
        }
        let s = stats(&[d]);
        let mut kind = &s.columns()[0].kind;
        let mut depth = 1;
        while let Kind::Struct(children) = kind {
            kind = &children[0].kind;
            depth += 1;
        }
        assert_eq!(*kind, Kind::Json);
        assert_eq!(depth, MAX_DEPTH + 1);
    }

    #[test]
    fn decimals_are_decimal_columns_only_when_every_value_has_one_exponent() {
        let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
        let exact = stats(&[doc! {"p": dec("1.50")}, doc! {"p": dec("-2.25")}]);
        assert_eq!(kinds(&exact)[0].1, Kind::Decimal { scale: 2 });
        let mixed = stats(&[doc! {"p": dec("1.5")}, doc! {"p": dec("1.50")}]);
        assert_eq!(kinds(&mixed)[0].1, Kind::DecimalString);
        let nan = stats(&[doc! {"p": dec("NaN")}]);
        assert_eq!(kinds(&nan)[0].1, Kind::DecimalString);
        let negative_zero = stats(&[doc! {"p": dec("-0")}]);
        assert_eq!(kinds(&negative_zero)[0].1, Kind::DecimalString);
    }

    #[test]
    fn arrays_are_lists_of_their_element_mapping() {
        let s = stats(&[doc! {"a": [1, 2], "m": [1, "x"], "e": []}]);
        assert_eq!(
            kinds(&s),
            vec![
                (
                    "a".into(),
                    Kind::List(Box::new(Column {
                        name: "element".into(),
                        kind: Kind::Int32,
                        nulls: Nulls::Never
                    })),
                    Nulls::Never
                ),
                (
                    "m".into(),
                    Kind::List(Box::new(Column {
                        name: "element".into(),
                        kind: Kind::Json,
                        nulls: Nulls::Never
                    })),
                    Nulls::Never
                ),
                ("e".into(), Kind::Json, Nulls::Never)
            ]
        );
    }

    #[test]
    fn statistics_of_two_shards_merge_into_one_schema() {
        let mut a = stats(&[doc! {"a": 1, "c": {"x": 1}}]);
        let b = stats(&[doc! {"a": 2, "b": "s", "c": {"x": 2, "y": 3}}]);
        a.merge(&b);
        let s = serde_json::to_string(&a).unwrap();
        let back: Stats = serde_json::from_str(&s).unwrap();
        let names: Vec<_> = back.columns().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(back.documents, 2);
        let Kind::Struct(children) = &back.columns()[2].kind else {
            panic!("c is a struct");
        };
        assert_eq!(children[1].nulls, Nulls::Missing);
    }

    #[test]
    fn the_ddl_names_every_column_with_its_hive_type() {
        let s = stats(&[doc! {"_id": 1, "tags": ["a"], "sub": {"q": 1.5}}]);
        let ddl = athena_ddl("shop", "orders", &s.columns(), "s3://b/p/shop/orders/");
        assert!(ddl.contains("`_id` int"), "{ddl}");
        assert!(ddl.contains("`tags` array<string>"), "{ddl}");
        assert!(ddl.contains("`sub` struct<q:double>"), "{ddl}");
        assert!(ddl.contains("LOCATION 's3://b/p/shop/orders/'"), "{ddl}");
    }
}
