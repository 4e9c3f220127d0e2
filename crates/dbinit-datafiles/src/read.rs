//! Reading a data file row by row, each field converted to its column's
//! type, with the line it came from: CSV (streamed), JSON Lines
//! (streamed) and a JSON array (read whole; use the other two for big
//! files).

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, Read};
use std::sync::{Arc, Mutex};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use xxhash_rust::xxh3::Xxh3;

use crate::convert::{Kind, Target};
use crate::datafile::{DataFile, Entry, Format};
use dbinit_core::excerpt;
use dbinit_core::literal::Decimal;
use dbinit_core::Value;

/// A refused row: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowError {
    pub(crate) line: u64,
    pub(crate) column: Option<String>,
    pub(crate) message: String,
}

impl RowError {
    fn at(line: u64, message: impl Into<String>) -> Self {
        RowError {
            line,
            column: None,
            message: message.into(),
        }
    }

    fn in_column(line: u64, target: &Target, message: String) -> Self {
        RowError {
            line,
            column: Some(target.name.clone()),
            message,
        }
    }

    /// `seeds/dev/a.csv line 3, column `price`: ...`.
    pub(crate) fn describe(&self, shown: &str) -> String {
        match &self.column {
            Some(c) => format!(
                "{shown} line {}, column {}: {}",
                self.line,
                shown_name(c),
                self.message
            ),
            None => format!("{shown} line {}: {}", self.line, self.message),
        }
    }
}

/// The longest column name shown (PostgreSQL's identifier limit).
const NAME_LIMIT: usize = 63;

/// Whether `name` (from a file) may be shown as a column name: not too
/// long, no control characters, not `KEY=value` (a line of an
/// environment, say).
pub(crate) fn showable(name: &str) -> bool {
    name.len() <= NAME_LIMIT && !name.chars().any(char::is_control) && !name.contains('=')
}

/// `` `name` ``, or a stand-in when the file's text may not be a name.
fn shown_name(name: &str) -> String {
    if showable(name) {
        format!("`{name}`")
    } else {
        "(a name that is not shown)".to_owned()
    }
}

/// A data file's checksum: its manifest entry, then its bytes as they are
/// read. What a load records is what it read, never what an earlier look
/// at the file saw.
#[derive(Clone)]
pub(crate) struct Checksum(Arc<Mutex<Xxh3>>);

impl Checksum {
    pub(crate) fn new(entry: &Entry) -> Self {
        let mut hasher = Xxh3::new();
        for part in [entry.table.as_str(), &entry.key.join("\u{0}")] {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        Checksum(Arc::new(Mutex::new(hasher)))
    }

    fn update(&self, bytes: &[u8]) {
        lock(&self.0).update(bytes);
    }

    /// The checksum of everything read so far.
    pub(crate) fn value(&self) -> String {
        format!("{:032x}", lock(&self.0).digest128())
    }

    /// `inner`, hashed as it is read.
    pub(crate) fn reading(&self, inner: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
        Box::new(Hashing {
            inner,
            sum: self.clone(),
        })
    }
}

struct Hashing {
    inner: Box<dyn Read + Send>,
    sum: Checksum,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sum.update(&buf[..n]);
        Ok(n)
    }
}

/// Which field of the file feeds each loaded column, and how.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Per loaded column: its index in the header, and its conversion.
    pub(crate) fields: Vec<(usize, Target)>,
}

impl Plan {
    fn key_positions(&self) -> Vec<usize> {
        (self.fields.iter().enumerate())
            .filter(|(_, (_, t))| t.key)
            .map(|(i, _)| i)
            .collect()
    }
}

/// An open data file.
pub(crate) struct Reader {
    header: Vec<String>,
    /// The line the header (CSV) or the first object (JSON) is on.
    header_line: u64,
    inner: Inner,
    checksum: Checksum,
}

enum Inner {
    Csv {
        rows: csv::Reader<Strict>,
        record: csv::ByteRecord,
        scan: Arc<Mutex<Scan>>,
    },
    Json(Objects),
}

impl Reader {
    pub(crate) fn open(file: &DataFile) -> Result<Reader, RowError> {
        let cannot = |e: std::io::Error| RowError::at(0, format!("cannot read it: {e}"));
        let checksum = Checksum::new(&file.entry);
        match file.format {
            Format::Csv => {
                let scan = Arc::new(Mutex::new(Scan::default()));
                let strict = Strict {
                    inner: checksum.reading(file.content.open().map_err(cannot)?),
                    scan: scan.clone(),
                };
                let mut rows = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(false)
                    .buffer_capacity(1 << 16)
                    .from_reader(strict);
                let header = rows
                    .byte_headers()
                    .map_err(|e| csv_error(&e, 1, &scan))?
                    .clone();
                if header.is_empty() {
                    return Err(RowError::at(
                        1,
                        "the file is empty; its first line names the columns",
                    ));
                }
                let mut names = Vec::with_capacity(header.len());
                for (i, field) in header.iter().enumerate() {
                    let name = std::str::from_utf8(field).map_err(|_| {
                        RowError::at(1, format!("field {} of the header is not UTF-8", i + 1))
                    })?;
                    let name = if i == 0 {
                        name.trim_start_matches('\u{feff}')
                    } else {
                        name
                    };
                    names.push(name.to_owned());
                }
                check_header(&names, 1)?;
                Ok(Reader {
                    header: names,
                    header_line: 1,
                    inner: Inner::Csv {
                        rows,
                        record: csv::ByteRecord::new(),
                        scan,
                    },
                    checksum,
                })
            }
            Format::Json | Format::JsonLines => {
                let mut objects = Objects::open(file, &checksum)?;
                // No objects: no columns, and no rows to load.
                let Some((line, first)) = objects.next()? else {
                    return Ok(Reader {
                        header: Vec::new(),
                        header_line: 1,
                        inner: Inner::Json(objects),
                        checksum,
                    });
                };
                let header: Vec<String> = first.0.iter().map(|(k, _)| k.clone()).collect();
                given_once(&first.0, line)?;
                check_header(&header, line)?;
                objects.pending = Some((line, first));
                Ok(Reader {
                    header,
                    header_line: line,
                    inner: Inner::Json(objects),
                    checksum,
                })
            }
        }
    }

    /// The checksum of what was read: at the end, of the whole file.
    pub(crate) fn checksum(&self) -> String {
        self.checksum.value()
    }

    /// The file's column names.
    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    pub(crate) fn header_line(&self) -> u64 {
        self.header_line
    }

    /// How far into the file reading got, in bytes.
    pub(crate) fn position(&self) -> u64 {
        match &self.inner {
            Inner::Csv { rows, .. } => rows.position().byte(),
            Inner::Json(objects) => objects.position(),
        }
    }

    /// Converts the next row into `out` by `plan`; returns its line, or
    /// `None` at the end.
    pub(crate) fn next_row(
        &mut self,
        plan: &Plan,
        out: &mut Vec<Value>,
    ) -> Result<Option<u64>, RowError> {
        out.clear();
        match &mut self.inner {
            Inner::Csv { rows, record, scan } => {
                let line = lock(scan).line_of(rows.position().byte());
                match rows.read_byte_record(record) {
                    Ok(false) => return Ok(None),
                    Ok(true) => {}
                    Err(e) => return Err(csv_error(&e, line, scan)),
                }
                let start = record.position().map_or(0, csv::Position::byte);
                let line = lock(scan).line_of(start);
                for (index, target) in &plan.fields {
                    let field = record.get(*index).unwrap_or_default();
                    let value = std::str::from_utf8(field)
                        .map_err(|_| "is not UTF-8".to_owned())
                        .and_then(|text| target.text(text))
                        .map_err(|message| RowError::in_column(line, target, message))?;
                    out.push(value);
                }
                Ok(Some(line))
            }
            Inner::Json(objects) => {
                let Some((line, object)) = objects.next()? else {
                    return Ok(None);
                };
                let members = &object.0;
                // Usually every object lists its members in the same order.
                let same_order = members.len() == self.header.len()
                    && members.iter().zip(&self.header).all(|((k, _), h)| k == h);
                if !same_order {
                    check_members(members, &self.header, line)?;
                }
                for (index, target) in &plan.fields {
                    let raw = if same_order {
                        &members[*index].1
                    } else {
                        let name = &self.header[*index];
                        &members.iter().find(|(k, _)| k == name).expect("checked").1
                    };
                    let value = target
                        .json(raw)
                        .map_err(|message| RowError::in_column(line, target, message))?;
                    out.push(value);
                }
                Ok(Some(line))
            }
        }
    }
}

/// Refuses an object whose members are not the header's: one given twice,
/// one missing, one more.
fn check_members(
    members: &[(String, Box<RawValue>)],
    header: &[String],
    line: u64,
) -> Result<(), RowError> {
    given_once(members, line)?;
    let keys: HashSet<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    let columns: HashSet<&str> = header.iter().map(String::as_str).collect();
    let missing: Vec<&str> = (header.iter().map(String::as_str))
        .filter(|h| !keys.contains(h))
        .collect();
    let extra: Vec<&str> = (members.iter().map(|(k, _)| k.as_str()))
        .filter(|k| !columns.contains(k))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    Err(RowError::at(
        line,
        format!(
            "its keys differ from the first object's (missing: {}; extra: {}); every object \
             gives the same columns",
            list(&missing),
            list(&extra)
        ),
    ))
}

/// At most ten names, each shown as [`shown_name`] allows.
fn list(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    let mut shown: Vec<String> = names.iter().take(10).map(|n| shown_name(n)).collect();
    if names.len() > 10 {
        shown.push(format!("and {} more", names.len() - 10));
    }
    shown.join(", ")
}

/// Refuses an object that gives a member twice: a map would keep the last
/// one without a word.
fn given_once(members: &[(String, Box<RawValue>)], line: u64) -> Result<(), RowError> {
    let mut seen = HashSet::with_capacity(members.len());
    let twice = members.iter().find(|(k, _)| !seen.insert(k.as_str()));
    match twice {
        Some((key, _)) => Err(RowError {
            line,
            column: Some(key.clone()),
            message: "is given twice in this object; give each member once".to_owned(),
        }),
        None => Ok(()),
    }
}

/// Refuses a header with a name missing, given twice, or unreadable (a
/// file whose first line is not a list of names is named by the field).
fn check_header(names: &[String], line: u64) -> Result<(), RowError> {
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(RowError::at(line, format!("column {} has no name", i + 1)));
        }
        // No table has such a column: the first line is not a header.
        if name.chars().any(char::is_control) {
            return Err(RowError::at(
                line,
                format!(
                    "field {} of the header holds control characters: it is not a column name \
                     (is this a data file?)",
                    i + 1
                ),
            ));
        }
        if names[..i].contains(name) {
            return Err(RowError {
                line,
                column: Some(name.clone()),
                message: "is named twice".to_owned(),
            });
        }
    }
    Ok(())
}

fn csv_error(e: &csv::Error, line: u64, scan: &Mutex<Scan>) -> RowError {
    let mut scan = lock(scan);
    if let Some((line, message)) = scan.error.clone() {
        return RowError::at(line, message);
    }
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => RowError::at(
            pos.as_ref().map_or(line, |p| scan.line_of(p.byte())),
            format!("{len} fields, but the header has {expected_len}"),
        ),
        _ => RowError::at(
            e.position().map_or(line, csv::Position::line),
            format!("cannot read it: {e}"),
        ),
    }
}

/// A JSON object's members in the order written, each value as written.
/// Unlike a map, it keeps a member given twice, to refuse it.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A JSON object and the line it starts on.
type Object = (u64, Members);

/// The value behind `shared`, whether or not a panic poisoned it.
pub(crate) fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The bytes of a CSV file on their way to the csv crate, which is lenient
/// (an unclosed quote swallows the rest of the file, `"a"b` reads as
/// `ab`) and counts lines by `\n` only: this checks RFC 4180 quoting and
/// counts lines ended by `\n`, `\r\n` or `\r`, so errors name the right line.
struct Strict {
    inner: Box<dyn std::io::Read + Send>,
    scan: Arc<Mutex<Scan>>,
}

impl std::io::Read for Strict {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut scan = lock(&self.scan);
        if n == 0 {
            scan.end();
        } else {
            scan.feed(&buf[..n]);
        }
        match &scan.error {
            Some((_, message)) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                message.clone(),
            )),
            None => Ok(n),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    #[default]
    FieldStart,
    Unquoted,
    Quoted,
    AfterQuote,
}

/// What [`Strict`] has seen.
#[derive(Debug, Default)]
struct Scan {
    offset: u64,
    /// Where the lines after the ones already asked about start.
    starts: VecDeque<u64>,
    /// Lines that start at or before the last offset asked about.
    passed: u64,
    /// The physical line at `offset`.
    line: u64,
    after_cr: bool,
    quoting: Quoting,
    quote_opened: u64,
    /// A byte-order mark is being skipped.
    bom: usize,
    error: Option<(u64, String)>,
}

impl Scan {
    const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let at = self.offset;
            self.offset += 1;
            if at < 3 && self.bom == at as usize && b == Self::BOM[self.bom] {
                self.bom += 1;
                continue;
            }
            let current = self.line + 1;
            match b {
                // `\r\n` ends one line, which counts from the `\r` on: the
                // csv crate may place the next record at the `\n`.
                b'\n' if self.after_cr => {}
                b'\n' | b'\r' => {
                    self.line += 1;
                    self.starts.push_back(self.offset);
                }
                _ => {}
            }
            self.after_cr = b == b'\r';
            self.quoting = match (self.quoting, b) {
                (Quoting::FieldStart, b'"') => {
                    self.quote_opened = current;
                    Quoting::Quoted
                }
                (Quoting::Quoted, b'"') => Quoting::AfterQuote,
                (Quoting::Quoted, _) | (Quoting::AfterQuote, b'"') => Quoting::Quoted,
                (_, b',' | b'\r' | b'\n') => Quoting::FieldStart,
                (Quoting::Unquoted, b'"') => {
                    return self.refuse(
                        current,
                        "a quote inside an unquoted field: quote the whole field and double \
                         the quotes in it (\"say \"\"hi\"\"\")",
                    );
                }
                (Quoting::AfterQuote, _) => {
                    return self.refuse(current, "text after the closing quote of a field");
                }
                (Quoting::FieldStart | Quoting::Unquoted, _) => Quoting::Unquoted,
            };
        }
    }

    fn end(&mut self) {
        if self.quoting == Quoting::Quoted && self.error.is_none() {
            let line = self.quote_opened;
            self.refuse(line, "the quoted field that starts here never closes");
        }
    }

    fn refuse(&mut self, line: u64, message: &str) {
        self.error.get_or_insert((line, message.to_owned()));
    }

    /// The line that byte `offset` is on (offsets asked about only grow).
    fn line_of(&mut self, offset: u64) -> u64 {
        while self.starts.front().is_some_and(|s| *s <= offset) {
            self.starts.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

/// JSON objects with their lines: an array's elements, or JSON Lines.
struct Objects {
    source: ObjectSource,
    /// The first object, read by `open` for the header.
    pending: Option<Object>,
}

enum ObjectSource {
    Array {
        bytes: std::borrow::Cow<'static, [u8]>,
        pos: usize,
        /// The line `pos` is on, counted up to `counted`.
        line: u64,
        counted: usize,
        started: bool,
        done: bool,
    },
    Lines {
        reader: std::io::BufReader<Box<dyn std::io::Read + Send>>,
        line: u64,
        bytes: u64,
        buffer: String,
    },
}

impl Objects {
    fn open(file: &DataFile, checksum: &Checksum) -> Result<Objects, RowError> {
        let cannot = |e: std::io::Error| RowError::at(0, format!("cannot read it: {e}"));
        let source = if file.format == Format::Json {
            let bytes = file.content.read_all().map_err(cannot)?;
            checksum.update(&bytes);
            ObjectSource::Array {
                bytes,
                pos: 0,
                line: 1,
                counted: 0,
                started: false,
                done: false,
            }
        } else {
            ObjectSource::Lines {
                reader: std::io::BufReader::with_capacity(
                    1 << 16,
                    checksum.reading(file.content.open().map_err(cannot)?),
                ),
                line: 0,
                bytes: 0,
                buffer: String::new(),
            }
        };
        Ok(Objects {
            source,
            pending: None,
        })
    }

    fn position(&self) -> u64 {
        match &self.source {
            ObjectSource::Array { pos, .. } => *pos as u64,
            ObjectSource::Lines { bytes, .. } => *bytes,
        }
    }

    fn next(&mut self) -> Result<Option<Object>, RowError> {
        if let Some(first) = self.pending.take() {
            return Ok(Some(first));
        }
        let (line, value) = match &mut self.source {
            ObjectSource::Lines {
                reader,
                line,
                bytes,
                buffer,
            } => loop {
                buffer.clear();
                *line += 1;
                let n = reader.read_line(buffer).map_err(|e| {
                    RowError::at(*line, format!("cannot read it (is it UTF-8?): {e}"))
                })?;
                if n == 0 {
                    return Ok(None);
                }
                *bytes += n as u64;
                let text = buffer.trim_start_matches('\u{feff}').trim();
                if text.is_empty() {
                    continue;
                }
                if !text.starts_with('{') {
                    return Err(RowError::at(*line, "is not a JSON object"));
                }
                let value: Members = serde_json::from_str(text)
                    .map_err(|e| RowError::at(*line, format!("not JSON: {e}")))?;
                break (*line, value);
            },
            ObjectSource::Array {
                bytes,
                pos,
                line,
                counted,
                started,
                done,
            } => {
                if *done {
                    return Ok(None);
                }
                let skip = |pos: &mut usize| {
                    while bytes.get(*pos).is_some_and(|b| b.is_ascii_whitespace()) {
                        *pos += 1;
                    }
                };
                if !*started {
                    if bytes.starts_with("\u{feff}".as_bytes()) {
                        *pos = 3;
                    }
                    skip(pos);
                    if bytes.get(*pos) != Some(&b'[') {
                        return Err(RowError::at(
                            1,
                            "a .json data file is an array of objects: [{...}, {...}]",
                        ));
                    }
                    *pos += 1;
                    skip(pos);
                    *started = true;
                } else {
                    skip(pos);
                    if bytes.get(*pos) == Some(&b',') {
                        *pos += 1;
                        skip(pos);
                        if bytes.get(*pos) == Some(&b']') {
                            *line += count_lines(&bytes[*counted..*pos]);
                            *counted = *pos;
                            return Err(RowError::at(
                                *line,
                                "a comma before `]`: JSON has no trailing commas",
                            ));
                        }
                    } else if bytes.get(*pos) != Some(&b']') {
                        *line += count_lines(&bytes[*counted..*pos]);
                        *counted = *pos;
                        return Err(RowError::at(*line, "expected `,` or `]` after an element"));
                    }
                }
                *line += count_lines(&bytes[*counted..*pos]);
                *counted = *pos;
                if bytes.get(*pos) == Some(&b']') {
                    *pos += 1;
                    skip(pos);
                    if *pos != bytes.len() {
                        return Err(RowError::at(*line, "text after the closing `]`"));
                    }
                    *done = true;
                    return Ok(None);
                }
                if bytes.get(*pos) != Some(&b'{') {
                    return Err(RowError::at(*line, "is not a JSON object"));
                }
                let mut stream =
                    serde_json::Deserializer::from_slice(&bytes[*pos..]).into_iter::<Members>();
                let value = match stream.next() {
                    Some(Ok(value)) => value,
                    Some(Err(e)) => {
                        return Err(RowError::at(
                            *line + e.line().saturating_sub(1) as u64,
                            format!("not JSON: {e}"),
                        ))
                    }
                    None => return Err(RowError::at(*line, "the array is not closed with `]`")),
                };
                *pos += stream.byte_offset();
                (*line, value)
            }
        };
        Ok(Some((line, value)))
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// Finds keys given twice. Keeps one 64-bit hash per row (bounded memory
/// for millions of rows) and, on a repeated hash, reads the file again
/// to find the earlier row with that key: exact, and only ever paid for a
/// duplicate (or a one-in-2^64 collision).
pub(crate) struct Duplicates {
    seen: HashSet<u64>,
    positions: Vec<usize>,
    kinds: Vec<Kind>,
    buffer: Vec<u8>,
}

impl Duplicates {
    pub(crate) fn new(plan: &Plan) -> Self {
        let positions = plan.key_positions();
        Duplicates {
            seen: HashSet::new(),
            kinds: positions.iter().map(|&p| plan.fields[p].1.kind).collect(),
            positions,
            buffer: Vec::new(),
        }
    }

    /// The key as the database compares it, as far as its type says:
    /// a UUID in any case, a decimal with any trailing zeros, are one key.
    fn key(&mut self, row: &[Value]) -> &[u8] {
        self.buffer.clear();
        for (&p, kind) in self.positions.iter().zip(&self.kinds) {
            match (kind, &row[p]) {
                (Kind::Uuid, Value::Text(s)) => {
                    let uuid = dbinit_core::literal::parse_uuid(s).unwrap_or_default();
                    encode(&Value::Bytes(uuid.to_vec()), &mut self.buffer);
                }
                (Kind::Numeric { .. }, Value::Text(s)) => {
                    let canonical =
                        Decimal::parse(s.trim()).map_or_else(|| s.clone(), |d| d.canonical());
                    encode(&Value::Text(canonical), &mut self.buffer);
                }
                (_, value) => encode(value, &mut self.buffer),
            }
        }
        &self.buffer
    }

    fn hash(&mut self, row: &[Value]) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self.key(row))
    }

    /// Whether `row`'s key may have been seen: check with [`earlier_line`].
    pub(crate) fn maybe_seen(&mut self, row: &[Value]) -> bool {
        let hash = self.hash(row);
        !self.seen.insert(hash)
    }

    /// The line of the first row before `line` with `row`'s key, if any.
    pub(crate) fn earlier_line(
        &self,
        file: &DataFile,
        plan: &Plan,
        row: &[Value],
        line: u64,
    ) -> Result<Option<u64>, RowError> {
        let mut keys = Duplicates::new(plan);
        let key = keys.key(row).to_vec();
        let mut reader = Reader::open(file)?;
        let mut other = Vec::new();
        while let Some(at) = reader.next_row(plan, &mut other)? {
            if at >= line {
                return Ok(None);
            }
            if keys.key(&other) == key.as_slice() {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// `slug = acme, tenant = 3`.
    pub(crate) fn describe(&self, plan: &Plan, row: &[Value]) -> String {
        (self.positions.iter())
            .map(|&p| format!("{} = {}", plan.fields[p].1.name, shown(&row[p])))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Text(s) => excerpt(s),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Bytes(b) => format!("{} bytes", b.len()),
        other => format!("{other:?}"),
    }
}

fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0),
        Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(3);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Text(s) => {
            out.push(4);
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(5);
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        }
        // `Value` may grow: a new kind keys by its debug form.
        other => {
            let shown = format!("{other:?}");
            out.push(6);
            out.extend_from_slice(&(shown.len() as u64).to_le_bytes());
            out.extend_from_slice(shown.as_bytes());
        }
    }
}

/// Finds the line of row `index` (0-based, over the rows read), for an
/// error the database reports by row.
pub(crate) fn line_of_row(file: &DataFile, plan: &Plan, index: u64) -> Option<u64> {
    let mut reader = Reader::open(file).ok()?;
    let mut row = Vec::new();
    let mut n = 0;
    while let Ok(Some(line)) = reader.next_row(plan, &mut row) {
        if n == index {
            return Some(line);
        }
        n += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_by_value() {
        let canonical = |s: &str| Decimal::parse(s).unwrap().canonical();
        for (a, b) in [
            ("1.0", "1.00"),
            ("-01.50", "-1.5"),
            ("+0", "0.000"),
            (".5", "0.50"),
            ("15e-1", "1.5"),
        ] {
            assert_eq!(canonical(a), canonical(b), "{a} {b}");
        }
        assert_ne!(canonical("1.5"), canonical("15"));
    }

    #[test]
    fn lines_end_in_lf_crlf_or_cr_and_quotes_are_checked() {
        let mut scan = Scan::default();
        scan.feed(b"a\r\nb\rc\n\"d\ne\",f\n");
        assert_eq!(scan.error, None);
        // Offsets: line 2 starts at 2 (the `\n` of `\r\n`) or 3.
        assert_eq!(
            (scan.line_of(0), scan.line_of(3), scan.line_of(5)),
            (1, 2, 3)
        );
        assert_eq!(scan.line_of(7), 4);
        let mut open = Scan::default();
        open.feed(b"a\n\"b\nc\n");
        open.end();
        assert_eq!(open.error.map(|(line, _)| line), Some(2));
        let mut stray = Scan::default();
        stray.feed(b"a,b\"c\n");
        assert_eq!(stray.error.map(|(line, _)| line), Some(1));
    }
}
