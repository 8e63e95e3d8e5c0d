//! Messages: H … L with the E1394 hierarchy, validation, splitting, assembling and building.

use std::collections::{HashMap, VecDeque};

use thiserror::Error;

use crate::build::{FieldBuf, RecordBuf};
use crate::delimiters::Delimiters;
use crate::error::{AssembleError, BuildError, MessageError};
use crate::record::{Record, RecordType, Records, is_header};
use crate::typed::{Comment, Header, Terminator, TypedRecord};

/// A rule of E1394 §5.1 (hierarchy, sequence numbers) that a record breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A record has no parent of the right type before it (an O without a P, an R without an O).
    #[error("{kind} record has no {expected} record before it")]
    MissingParent {
        /// The record's type.
        kind: RecordType,
        /// The parent type it needs.
        expected: RecordType,
    },
    /// A header that is not the first record.
    #[error("header is not the first record of the message")]
    HeaderNotFirst,
    /// The sequence number (field 2) is not the expected one.
    #[error("{kind} record has {}, expected {expected}", written_sequence(*found, written))]
    Sequence {
        /// The record's type.
        kind: RecordType,
        /// The number it should have (restarting at 1 under each parent).
        expected: u32,
        /// The number it has; `None` when empty or not a number.
        found: Option<u32>,
        /// Field 2 as written (lossy text, at most 40 characters), so `A` or `4294967296`
        /// shows what is wrong with it.
        written: String,
    },
    /// A record after the L record.
    #[error("{kind} record after the terminator record")]
    AfterTerminator {
        /// The record's type.
        kind: RecordType,
    },
    /// The message has no L record.
    #[error("message has no terminator (L) record")]
    MissingTerminator,
    /// A record type this crate does not know; it is attached to the record before it.
    #[error("unknown record type {type_field:?}")]
    UnknownType {
        /// The type field as written (lossy).
        type_field: String,
    },
    /// The header declares two non-ASCII delimiters in a row, probably the bytes of one
    /// multi-byte character such as `¥` ([`Delimiters::looks_multi_byte`]).
    #[error("header declares a non-ASCII delimiter (a multi-byte character such as the yen sign?)")]
    NonAsciiDelimiter,
}

/// How a [`ViolationKind::Sequence`] names the number a record has.
fn written_sequence(found: Option<u32>, written: &str) -> String {
    match found {
        Some(n) => format!("sequence number {n}"),
        None if written.trim().is_empty() => "no sequence number".to_owned(),
        None if written.trim().bytes().all(|b| b.is_ascii_digit()) => {
            format!("sequence number {written:?}, beyond {}", u32::MAX)
        }
        None => format!("sequence number {written:?}, not a number"),
    }
}

/// One violation, with the position of the record (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("record {record}: {kind}")]
pub struct Violation {
    /// 1-based position of the record in the message.
    pub record: usize,
    /// The rule broken.
    pub kind: ViolationKind,
}

/// How strictly [`Message::parse_with`] treats violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Validation {
    /// Report violations as warnings ([`Message::violations`]); the default.
    #[default]
    Lenient,
    /// Fail with [`MessageError::Invalid`] if there is any violation.
    Strict,
}

/// Where one record goes in the hierarchy.
#[derive(Debug, Default)]
struct Placement {
    parent: Option<usize>,
    attached: bool,
    expected_sequence: Option<u32>,
    violations: Vec<ViolationKind>,
}

/// Places records one by one: levels H/L 0, P/Q/S 1, O 2, R 3; C and M attach to the record before.
#[derive(Debug, Default)]
struct Hierarchy {
    /// Open record per level: (index, type).
    open: [Option<(usize, RecordType)>; 4],
    /// Owner for C/M: the last record that is not an attachment.
    last_owner: Option<usize>,
    counts: HashMap<(usize, RecordType), u32>,
    terminated: bool,
    next_index: usize,
}

impl Hierarchy {
    fn place(&mut self, kind: RecordType) -> Placement {
        let index = self.next_index;
        self.next_index += 1;
        let mut placement = Placement::default();
        if self.terminated {
            placement
                .violations
                .push(ViolationKind::AfterTerminator { kind });
        }
        let level = match kind {
            RecordType::Header if index == 0 => {
                self.open = [Some((0, kind)), None, None, None];
                self.last_owner = Some(0);
                return placement;
            }
            RecordType::Header => {
                placement.violations.push(ViolationKind::HeaderNotFirst);
                None
            }
            RecordType::Terminator => {
                self.terminated = true;
                Some((0, RecordType::Header))
            }
            RecordType::Patient | RecordType::Query | RecordType::Scientific => {
                Some((1, RecordType::Header))
            }
            RecordType::Order => Some((2, RecordType::Patient)),
            RecordType::Result => Some((3, RecordType::Order)),
            RecordType::Comment | RecordType::Manufacturer | RecordType::Other => None,
        };
        match level {
            Some((level, expected)) => {
                let level: usize = level;
                let wanted = level.saturating_sub(1);
                let parent = match self.open[wanted] {
                    Some((at, found)) if found == expected => Some(at),
                    _ => {
                        placement
                            .violations
                            .push(ViolationKind::MissingParent { kind, expected });
                        self.open[..=wanted]
                            .iter()
                            .rev()
                            .flatten()
                            .next()
                            .map(|&(at, _)| at)
                    }
                };
                placement.parent = parent;
                if kind != RecordType::Terminator {
                    self.open[level] = Some((index, kind));
                    for slot in &mut self.open[level + 1..] {
                        *slot = None;
                    }
                }
                self.last_owner = Some(index);
            }
            None if kind == RecordType::Header => {
                // A second header: keep it at the top and start its hierarchy afresh.
                placement.parent = Some(0);
                self.open = [Some((index, kind)), None, None, None];
                self.last_owner = Some(index);
            }
            None => {
                placement.parent = self.last_owner;
                placement.attached = true;
            }
        }
        // A header has no sequence number (its field 2 holds the delimiters). L.2 is 1
        // whatever came before: one terminator per message, so a second one is reported as
        // misplaced, not also as misnumbered.
        if kind == RecordType::Terminator && placement.parent.is_some() {
            placement.expected_sequence = Some(1);
        } else if !matches!(kind, RecordType::Other | RecordType::Header)
            && let Some(parent) = placement.parent
        {
            let count = self.counts.entry((parent, kind)).or_insert(0);
            *count += 1;
            placement.expected_sequence = Some(*count);
        }
        placement
    }
}

/// A parsed message: the records in order plus the hierarchy built over them.
///
/// ```
/// use astm_records::{Message, RecordType};
/// let text = b"H|\\^&|||LIS\rP|1\rO|1|S1||^^^GLU\rR|1|^^^GLU|5.5|mmol/L\rC|1|I|checked\rL|1|N\r";
/// let message = Message::parse(text)?;
/// assert!(message.violations().is_empty());
/// let patient = message.patients().next().unwrap();
/// let order = patient.children().next().unwrap();
/// let result = order.children().next().unwrap();
/// assert_eq!(result.kind(), RecordType::Result);
/// assert_eq!(result.comments().next().unwrap().text().text(), "checked");
/// # Ok::<(), astm_records::MessageError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Message<'a> {
    records: Vec<Record<'a>>,
    parents: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    attachments: Vec<Vec<usize>>,
    violations: Vec<Violation>,
}

impl<'a> Message<'a> {
    /// Parses one message, reporting rule violations as warnings (in
    /// [`violations`](Self::violations)).
    ///
    /// # Errors
    ///
    /// As [`parse_with`](Self::parse_with); never [`MessageError::Invalid`].
    pub fn parse(text: &'a [u8]) -> Result<Self, MessageError> {
        Self::parse_with(text, Validation::Lenient)
    }

    /// Parses one message, failing on any rule violation.
    ///
    /// # Errors
    ///
    /// As [`parse_with`](Self::parse_with), including [`MessageError::Invalid`] with every
    /// violation found.
    pub fn parse_strict(text: &'a [u8]) -> Result<Self, MessageError> {
        Self::parse_with(text, Validation::Strict)
    }

    /// Parses one message with the chosen validation.
    ///
    /// Records are split on CR, LF or CR LF. The first record must be a header; a record that cannot be
    /// parsed (a header with an unusable delimiter definition) fails the message in both modes.
    ///
    /// # Errors
    ///
    /// [`MessageError::Empty`] for text without a record, [`MessageError::Record`] for a record
    /// that cannot be parsed, [`MessageError::MissingHeader`] when the first record is not a
    /// header (as for text still in its E1381 frames, which the error's message points out), and
    /// with [`Validation::Strict`] [`MessageError::Invalid`] when there is any violation.
    pub fn parse_with(text: &'a [u8], validation: Validation) -> Result<Self, MessageError> {
        let records = Records::new(text).collect::<Result<Vec<_>, _>>()?;
        Self::from_records(records, validation)
    }

    /// Builds the hierarchy over records already parsed.
    ///
    /// # Errors
    ///
    /// [`MessageError::Empty`] for no records, [`MessageError::MissingHeader`] when the first is
    /// not a header, and with [`Validation::Strict`] [`MessageError::Invalid`] when there is any
    /// violation.
    pub fn from_records(
        records: Vec<Record<'a>>,
        validation: Validation,
    ) -> Result<Self, MessageError> {
        let first = records.first().ok_or(MessageError::Empty)?;
        if first.kind() != RecordType::Header
            && let [b'H' | b'h', _, ..] = first.raw()
            && let Err(error) = Delimiters::from_header(first.raw())
        {
            // `HA\^&`: a header whose field delimiter is a letter or digit, so not recognised as
            // one; "must be a header" would blame the wrong thing.
            return Err(MessageError::Record {
                record: 1,
                error: error.into(),
            });
        }
        if first.kind() != RecordType::Header {
            return Err(MessageError::MissingHeader {
                found: first.field(1).text().into_owned(),
            });
        }
        let mut hierarchy = Hierarchy::default();
        let mut message = Self {
            parents: Vec::with_capacity(records.len()),
            children: vec![Vec::new(); records.len()],
            attachments: vec![Vec::new(); records.len()],
            violations: Vec::new(),
            records,
        };
        let mut terminated = false;
        for (index, record) in message.records.iter().enumerate() {
            let kind = record.kind();
            let placement = hierarchy.place(kind);
            let mut violations = placement.violations;
            if let Some(expected) = placement.expected_sequence {
                let found = record.sequence();
                if found != Some(expected) {
                    violations.push(ViolationKind::Sequence {
                        kind,
                        expected,
                        found,
                        written: record.field(2).text().chars().take(40).collect(),
                    });
                }
            }
            match kind {
                RecordType::Header if record.delimiters().looks_multi_byte() => {
                    violations.push(ViolationKind::NonAsciiDelimiter);
                }
                RecordType::Other => violations.push(ViolationKind::UnknownType {
                    type_field: record.field(1).text().into_owned(),
                }),
                RecordType::Terminator => terminated = true,
                _ => {}
            }
            if let Some(parent) = placement.parent {
                let list = if placement.attached {
                    &mut message.attachments
                } else {
                    &mut message.children
                };
                list[parent].push(index);
            }
            message.parents.push(placement.parent);
            message
                .violations
                .extend(violations.into_iter().map(|kind| Violation {
                    record: index + 1,
                    kind,
                }));
        }
        if !terminated {
            message.violations.push(Violation {
                record: message.records.len(),
                kind: ViolationKind::MissingTerminator,
            });
        }
        if validation == Validation::Strict && !message.violations.is_empty() {
            return Err(MessageError::Invalid(message.violations));
        }
        Ok(message)
    }

    /// All records, in order.
    pub fn records(&self) -> &[Record<'a>] {
        &self.records
    }

    /// The rule violations found (empty for a well-formed message).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The header.
    pub fn header(&self) -> Header<'a> {
        match self.records[0].typed() {
            TypedRecord::Header(header) => header,
            // from_records checked the first record is a header.
            _ => unreachable!("the first record is a header"),
        }
    }

    /// The first L record, if any.
    pub fn terminator(&self) -> Option<Terminator<'a>> {
        self.records.iter().find_map(|r| Terminator::new(*r))
    }

    /// The header as the root of the hierarchy.
    pub fn root(&self) -> Node<'_, 'a> {
        self.node(0)
    }

    /// The node of record `index` (0-based). Panics if out of range, like slice indexing.
    pub fn node(&self, index: usize) -> Node<'_, 'a> {
        assert!(index < self.records.len(), "record index out of range");
        Node {
            message: self,
            index,
        }
    }

    /// The P records under the header.
    pub fn patients(&self) -> impl Iterator<Item = Node<'_, 'a>> {
        self.root().children_of(RecordType::Patient)
    }

    /// The Q records under the header.
    pub fn queries(&self) -> impl Iterator<Item = Node<'_, 'a>> {
        self.root().children_of(RecordType::Query)
    }

    /// All R records, wherever they sit.
    ///
    /// To know which order and patient each result belongs to, walk
    /// [`nodes_of`](Self::nodes_of)`(RecordType::Result)` and ask each node for its
    /// [`ancestor`](Node::ancestor).
    pub fn results(&self) -> impl Iterator<Item = crate::ResultRecord<'a>> + '_ {
        self.records
            .iter()
            .filter_map(|r| crate::ResultRecord::new(*r))
    }

    /// The nodes of every record of one type, in message order, wherever they sit in the
    /// hierarchy (an O record without a P before it hangs under the header, so
    /// [`patients`](Self::patients) does not reach it; this does).
    ///
    /// A result with its sample and patient, one row per R record:
    ///
    /// ```
    /// use astm_records::{Message, Order, Patient, RecordType, ResultRecord};
    /// let text = b"H|\\^&\rP|1||PID7\rO|1|S-1||^^^GLU\rR|1|^^^GLU|5.5|mmol/L||H\rL|1|N\r";
    /// let message = Message::parse(text)?;
    /// for node in message.nodes_of(RecordType::Result) {
    ///     let result = ResultRecord::new(node.record()).unwrap();
    ///     let order = node.ancestor(RecordType::Order).and_then(|o| Order::new(o.record()));
    ///     let patient = node.ancestor(RecordType::Patient).and_then(|p| Patient::new(p.record()));
    ///     let sample = order.map(|o| o.specimen_id().text().into_owned());
    ///     let patient_id = patient.map(|p| p.laboratory_patient_id().text().into_owned());
    ///     assert_eq!(sample.as_deref(), Some("S-1"));
    ///     assert_eq!(patient_id.as_deref(), Some("PID7"));
    ///     assert_eq!(result.test_code().as_deref(), Some("GLU"));
    ///     assert_eq!(result.value_text(), "5.5");
    /// }
    /// # Ok::<(), astm_records::MessageError>(())
    /// ```
    pub fn nodes_of(&self, kind: RecordType) -> impl Iterator<Item = Node<'_, 'a>> {
        (0..self.records.len())
            .filter(move |&index| self.records[index].kind() == kind)
            .map(|index| Node {
                message: self,
                index,
            })
    }
}

/// A record in a message's hierarchy.
#[derive(Debug, Clone, Copy)]
pub struct Node<'m, 'a> {
    message: &'m Message<'a>,
    index: usize,
}

impl<'m, 'a> Node<'m, 'a> {
    /// 0-based position of the record in the message.
    pub const fn index(&self) -> usize {
        self.index
    }

    /// The record.
    pub fn record(&self) -> Record<'a> {
        self.message.records[self.index]
    }

    /// The record type.
    pub fn kind(&self) -> RecordType {
        self.record().kind()
    }

    /// The record as its typed view.
    pub fn typed(&self) -> TypedRecord<'a> {
        self.record().typed()
    }

    /// The parent (for C and M: the record they attach to); `None` for the header.
    pub fn parent(&self) -> Option<Self> {
        self.message.parents[self.index].map(|index| Self {
            message: self.message,
            index,
        })
    }

    /// The nearest record of type `kind` above this one, following [`parent`](Self::parent)
    /// links: for an R record, `ancestor(RecordType::Order)` is its order and
    /// `ancestor(RecordType::Patient)` its patient. `None` when there is none, as for an R
    /// under an O that had no P before it. A C or M record's ancestors are those of the
    /// record it is attached to, and that record itself.
    pub fn ancestor(&self, kind: RecordType) -> Option<Self> {
        let mut node = self.parent();
        while let Some(current) = node {
            if current.kind() == kind {
                return Some(current);
            }
            node = current.parent();
        }
        None
    }

    /// The records one level down (P under H, O under P, R under O; Q, S and L under H).
    pub fn children(&self) -> impl Iterator<Item = Self> + use<'m, 'a> {
        let message = self.message;
        message.children[self.index]
            .iter()
            .map(move |&index| Self { message, index })
    }

    /// Children of one type.
    pub fn children_of(&self, kind: RecordType) -> impl Iterator<Item = Self> + use<'m, 'a> {
        self.children().filter(move |n| n.kind() == kind)
    }

    /// The C, M and unknown records attached to this one.
    pub fn attachments(&self) -> impl Iterator<Item = Self> + use<'m, 'a> {
        let message = self.message;
        message.attachments[self.index]
            .iter()
            .map(move |&index| Self { message, index })
    }

    /// The comments attached to this record.
    pub fn comments(&self) -> impl Iterator<Item = Comment<'a>> + use<'m, 'a> {
        self.attachments().filter_map(|n| Comment::new(n.record()))
    }
}

/// Splits text holding several messages at each header record; see [`split_messages`].
#[derive(Debug, Clone)]
pub struct MessageSlices<'a> {
    rest: &'a [u8],
}

/// Splits text into messages, each starting at a header record (`H` or `h` followed by a
/// non-alphanumeric byte at the start of a line). Text before the first header is returned as its own
/// slice, so nothing is lost; [`Message::parse`] then reports it.
pub fn split_messages(text: &[u8]) -> MessageSlices<'_> {
    MessageSlices { rest: text }
}

impl<'a> Iterator for MessageSlices<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&b| b != b'\r' && b != b'\n')?;
        let text = &self.rest[start..];
        let mut pos = 0;
        loop {
            let Some(end) = memchr::memchr2(b'\r', b'\n', &text[pos..]) else {
                self.rest = &[];
                return Some(text);
            };
            let line = text[pos + end..]
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .map_or(text.len(), |n| pos + end + n);
            if line == text.len() {
                self.rest = &[];
                return Some(text);
            }
            if is_header(&text[line..]) {
                self.rest = &text[line..];
                return Some(&text[..line]);
            }
            pos = line;
        }
    }
}

/// Collects the texts of E1381 messages (one record each, or several) into complete H … L messages.
///
/// Most instruments send one record per E1381 message; some send the whole H … L in one. Push each
/// reassembled E1381 message text; take complete messages with [`next_message`](Self::next_message).
/// Records are re-terminated with CR. A message ends at its L record, or when a new header arrives
/// (the unterminated one is delivered as it is, and [`Message::parse`] reports the missing L).
/// A message that grows beyond the limit is dropped whole: after [`AssembleError::TooLong`] every
/// record up to the next header is discarded too.
///
/// ```
/// use astm_records::MessageAssembler;
/// let mut assembler = MessageAssembler::new(1 << 20);
/// for text in [&b"H|\\^&\r"[..], b"P|1\r", b"L|1|N\r"] {
///     assembler.push(text)?;
/// }
/// assert_eq!(assembler.next_message().unwrap(), b"H|\\^&\rP|1\rL|1|N\r");
/// # Ok::<(), astm_records::AssembleError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessageAssembler {
    pending: Vec<u8>,
    ready: VecDeque<Vec<u8>>,
    limit: usize,
    field: u8,
    /// Set by an overflow: the rest of that message is dropped, so no header-less tail is handed out.
    skipping: bool,
}

impl MessageAssembler {
    /// An assembler that refuses messages longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            pending: Vec::new(),
            ready: VecDeque::new(),
            limit,
            field: b'|',
            skipping: false,
        }
    }

    /// Adds the text of one E1381 message.
    ///
    /// On [`AssembleError::TooLong`] the pending message is discarded, and so is every record after it
    /// up to the next header, in this text or in later ones; the assembler stays usable. Records of
    /// `text` after such a header are kept.
    pub fn push(&mut self, text: &[u8]) -> Result<(), AssembleError> {
        let mut overflow = None;
        for line in text
            .split(|&b| b == b'\r' || b == b'\n')
            .filter(|l| !l.is_empty())
        {
            if is_header(line) {
                self.skipping = false;
                if !self.pending.is_empty() {
                    self.ready.push_back(std::mem::take(&mut self.pending));
                }
                self.field = line.get(1).copied().unwrap_or(b'|');
            } else if self.skipping {
                continue;
            }
            if self.pending.len() + line.len() + 1 > self.limit {
                let discarded = self.pending.len();
                self.pending.clear();
                self.skipping = true;
                let earlier = overflow.map_or(0, |(_, d)| d);
                overflow = Some((self.limit, earlier + discarded));
                continue;
            }
            self.pending.extend_from_slice(line);
            self.pending.push(b'\r');
            let type_field = line.split(|&b| b == self.field).next().unwrap_or_default();
            if RecordType::from_field(type_field) == RecordType::Terminator {
                self.ready.push_back(std::mem::take(&mut self.pending));
            }
        }
        match overflow {
            Some((limit, discarded)) => Err(AssembleError::TooLong { limit, discarded }),
            None => Ok(()),
        }
    }

    /// The next complete message, oldest first.
    pub fn next_message(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Takes whatever is pending (an incomplete message), e.g. at end of input.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// Bytes buffered for the message in progress.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

/// Builds a whole message: numbers the records per the hierarchy, checks it, adds `L|1|N` if missing,
/// and writes the header's H.2 from the delimiters the message is written with.
///
/// ```
/// use astm_records::{FieldBuf, HeaderBuilder, MessageBuilder, OrderBuilder, PatientBuilder};
/// let message = MessageBuilder::new(HeaderBuilder::new().sender_name("LIS"))
///     .push(PatientBuilder::new().laboratory_patient_id("P-1"))
///     .push(OrderBuilder::new().specimen_id("S1").universal_test_id(FieldBuf::test_codes(["TSH", "FT4"])))
///     .push(OrderBuilder::new().specimen_id("S2").universal_test_id(FieldBuf::test_code("GLU")))
///     .build()?;
/// assert_eq!(message, b"H|\\^&|||LIS\rP|1||P-1\rO|1|S1||^^^TSH\\^^^FT4\rO|2|S2||^^^GLU\rL|1|N\r");
/// # Ok::<(), astm_records::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    delimiters: Delimiters,
    records: Vec<RecordBuf>,
}

impl MessageBuilder {
    /// Starts a message with `header`, written with the standard delimiters `|\^&`.
    pub fn new(header: impl Into<RecordBuf>) -> Self {
        Self::with_delimiters(Delimiters::STANDARD, header)
    }

    /// Starts a message with `header`, written with `delimiters`.
    pub fn with_delimiters(delimiters: Delimiters, header: impl Into<RecordBuf>) -> Self {
        Self {
            delimiters,
            records: vec![header.into()],
        }
    }

    /// Appends a record.
    #[must_use]
    pub fn push(mut self, record: impl Into<RecordBuf>) -> Self {
        self.add(record);
        self
    }

    /// Appends a record (by reference, for loops).
    pub fn add(&mut self, record: impl Into<RecordBuf>) -> &mut Self {
        self.records.push(record.into());
        self
    }

    /// Each record as bytes without terminator (e.g. one per E1381 message), numbered and checked.
    ///
    /// # Errors
    ///
    /// [`BuildError::Hierarchy`] when the records break the E1394 hierarchy (the first is not a
    /// header, an O with no P before it, a record of unknown type …), and
    /// [`BuildError::Record`] (with the record's position and the cause) when a record cannot be
    /// written with the builder's delimiters, as [`RecordBuf::to_bytes`].
    pub fn build_records(&self) -> Result<Vec<Vec<u8>>, BuildError> {
        let mut records = self.records.clone();
        if records.last().map(RecordBuf::kind) != Some(RecordType::Terminator) {
            let mut terminator = RecordBuf::new(b'L');
            terminator.set(3, "N");
            records.push(terminator);
        }
        let mut hierarchy = Hierarchy::default();
        records
            .iter_mut()
            .enumerate()
            .map(|(index, record)| {
                let kind = record.kind();
                let mut placement = hierarchy.place(kind);
                if index == 0 && kind != RecordType::Header {
                    placement.violations.push(ViolationKind::MissingParent {
                        kind,
                        expected: RecordType::Header,
                    });
                }
                if kind == RecordType::Other {
                    let type_field = record.to_bytes(&self.delimiters).unwrap_or_default();
                    let type_field = type_field
                        .split(|&b| b == self.delimiters.field())
                        .next()
                        .unwrap_or_default();
                    placement.violations.push(ViolationKind::UnknownType {
                        type_field: String::from_utf8_lossy(type_field).into_owned(),
                    });
                }
                if let Some(violation) = placement.violations.into_iter().next() {
                    return Err(BuildError::Hierarchy(Violation {
                        record: index + 1,
                        kind: violation,
                    }));
                }
                if let Some(sequence) = placement.expected_sequence {
                    record.set_sequence(sequence);
                }
                if index == 0 {
                    // H.2 must declare the delimiters the message is written with, whatever a
                    // header built field by field holds there.
                    record.declare_delimiters();
                }
                if let Some(letter) = kind.letter() {
                    // The standard's record types are capitals; a parsed `p` is written `P`.
                    record.set(1, FieldBuf::raw([letter]));
                }
                record
                    .to_bytes(&self.delimiters)
                    .map_err(|error| BuildError::Record {
                        record: index + 1,
                        error: Box::new(error),
                    })
            })
            .collect()
    }

    /// The whole message, each record terminated by CR.
    ///
    /// # Errors
    ///
    /// As [`build_records`](Self::build_records).
    pub fn build(&self) -> Result<Vec<u8>, BuildError> {
        let mut out = Vec::new();
        for record in self.build_records()? {
            out.extend_from_slice(&record);
            out.push(b'\r');
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(v: &Message<'_>) -> Vec<String> {
        v.violations().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn hierarchy_and_sequence_restart() {
        let text = b"H|\\^&\rP|1\rC|1|I|p\rO|1|S\rR|1|^^^A|1\rC|1|I|r1\rC|2|I|r1b\rR|2|^^^B|2\rC|1|I|r2\rO|2|T\rR|1|^^^C|3\rP|2\rO|1|U\rQ|1|^X\rL|1|N\r";
        let m = Message::parse_strict(text).unwrap();
        let patients: Vec<_> = m.patients().collect();
        assert_eq!(patients.len(), 2);
        assert_eq!(patients[0].comments().count(), 1);
        let orders: Vec<_> = patients[0].children().collect();
        assert_eq!(orders.len(), 2);
        let results: Vec<_> = orders[0].children().collect();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].comments().count(), 2);
        assert_eq!(results[1].parent().unwrap().index(), orders[0].index());
        assert_eq!(m.queries().count(), 1);
        assert_eq!(m.results().count(), 3);
        assert_eq!(
            m.terminator().unwrap().code(),
            Some(crate::TerminationCode::Normal)
        );
        assert_eq!(m.root().children_of(RecordType::Terminator).count(), 1);
    }

    #[test]
    fn violations_are_warnings_or_errors() {
        let text = b"H|\\^&\rO|1|S\rP|1\rR|1|^^^A\rP|3\rX|1\rL|1|N\rC|1\r";
        let m = Message::parse(text).unwrap();
        assert_eq!(
            kinds(&m),
            [
                "record 2: O record has no P record before it",
                "record 4: R record has no O record before it",
                "record 5: P record has sequence number 3, expected 2",
                "record 6: unknown record type \"X\"",
                "record 8: C record after the terminator record",
            ]
        );
        let Err(MessageError::Invalid(list)) = Message::parse_strict(text) else {
            panic!("strict must fail")
        };
        assert_eq!(list.len(), 5);
        let m = Message::parse(b"H|\\^&\rP|1\r").unwrap();
        assert_eq!(
            kinds(&m),
            ["record 2: message has no terminator (L) record"]
        );
        assert!(matches!(
            Message::parse(b"P|1\rL|1\r"),
            Err(MessageError::MissingHeader { .. })
        ));
        assert_eq!(Message::parse(b"\r\n").unwrap_err(), MessageError::Empty);
    }

    /// A second H record is out of place, but it has no sequence number to check (its
    /// field 2 holds the delimiters), and the records under it number from 1 again.
    #[test]
    fn a_second_header_has_no_sequence_number_to_check() {
        let text = b"H|\\^&\rP|1\rH|\\^&\rP|1\rL|1|N\r";
        let m = Message::parse(text).unwrap();
        assert_eq!(
            kinds(&m),
            ["record 3: header is not the first record of the message"]
        );
        let text = b"H|\\^&\rP|1\rL|1|N\rH|\\^&\rL|1|N\r";
        let m = Message::parse(text).unwrap();
        assert_eq!(
            kinds(&m),
            [
                "record 4: H record after the terminator record",
                "record 4: header is not the first record of the message",
                "record 5: L record after the terminator record",
            ]
        );
    }

    #[test]
    fn split_and_assemble() {
        let text = b"junk\rH|\\^&\rL|1|N\r\nh|\\^&\nP|1\nL|1|N";
        let parts: Vec<_> = split_messages(text).collect();
        assert_eq!(
            parts,
            [&b"junk\r"[..], b"H|\\^&\rL|1|N\r\n", b"h|\\^&\nP|1\nL|1|N"]
        );

        let mut a = MessageAssembler::new(64);
        a.push(b"H|\\^&\rP|1\r").unwrap();
        a.push(b"H!\\^&\r").unwrap();
        a.push(b"L!1!N").unwrap();
        assert_eq!(a.next_message().unwrap(), b"H|\\^&\rP|1\r");
        assert_eq!(a.next_message().unwrap(), b"H!\\^&\rL!1!N\r");
        assert!(a.next_message().is_none());
        a.push(b"H|\\^&\r").unwrap();
        assert_eq!(a.pending_len(), 6);
        assert!(matches!(
            a.push(&[b'C'; 80]),
            Err(AssembleError::TooLong {
                limit: 64,
                discarded: 6
            })
        ));
        assert!(a.finish().is_none());
    }

    #[test]
    fn after_too_long_the_rest_of_the_message_is_skipped_until_the_next_header() {
        let mut a = MessageAssembler::new(40);
        a.push(b"H|\\^&\rP|1\rO|1|S1\r").unwrap();
        assert_eq!(
            a.push(b"R|1|^^^A|xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r"),
            Err(AssembleError::TooLong {
                limit: 40,
                discarded: 17
            })
        );
        a.push(b"R|2|^^^B|2\r").unwrap();
        a.push(b"C|1|I|x\rL|1|N\r").unwrap();
        assert_eq!(a.next_message(), None);
        assert_eq!(a.pending_len(), 0);
        a.push(b"H|\\^&\rL|1|N\r").unwrap();
        assert_eq!(a.next_message().unwrap(), b"H|\\^&\rL|1|N\r");

        // Overflow, tail and the next message in one text: the next message is kept.
        let long = [b'C'; 50];
        let text = [
            &b"H|\\^&\rP|1\r"[..],
            &long,
            b"\rR|1\rL|1|N\rH|\\^&\rL|1|N\r",
        ]
        .concat();
        assert!(matches!(
            a.push(&text),
            Err(AssembleError::TooLong { discarded: 10, .. })
        ));
        assert_eq!(a.next_message().unwrap(), b"H|\\^&\rL|1|N\r");
        assert_eq!(a.next_message(), None);
        assert!(a.finish().is_none());

        // An oversized header starts the skipping too.
        let header = [&b"H|\\^&|"[..], &[b'x'; 50]].concat();
        assert!(a.push(&header).is_err());
        a.push(b"P|1\rL|1|N\r").unwrap();
        assert_eq!(a.next_message(), None);
    }

    /// A header built field by field (`RecordBuf::from_fields`) has no delimiter definition:
    /// the builder wrote `H\r…` or H.2 escaped as data (`H|&R&&S&&E&|||LIS`), a message that
    /// no parser can read, without an error. The header is what declares the delimiters
    /// (E1394 H.2), so the builder writes it from the ones in use.
    #[test]
    fn builder_writes_the_header_definition_whatever_the_header_holds() {
        use crate::FieldBuf;
        let bare = MessageBuilder::new(RecordBuf::from_fields([FieldBuf::raw("H")]))
            .build()
            .unwrap();
        assert_eq!(bare, b"H|\\^&\rL|1|N\r");
        let header = RecordBuf::from_fields([
            FieldBuf::raw("H"),
            FieldBuf::text("\\^&"),
            FieldBuf::empty(),
            FieldBuf::empty(),
            FieldBuf::text("LIS"),
        ]);
        let out = MessageBuilder::new(header.clone()).build().unwrap();
        assert_eq!(out, b"H|\\^&|||LIS\rL|1|N\r");
        assert!(Message::parse_strict(&out).is_ok());
        let dxh = Delimiters::new(b'|', b'\\', b'!', Some(b'~')).unwrap();
        let out = MessageBuilder::with_delimiters(dxh, header)
            .build()
            .unwrap();
        assert_eq!(out, b"H|\\!~|||LIS\rL|1|N\r");
        assert_eq!(
            *Message::parse_strict(&out)
                .unwrap()
                .header()
                .record()
                .delimiters(),
            dxh
        );
    }

    /// A parsed header relayed through the builder declares its delimiters as the standard
    /// writes them: the doubled `H|\\\\^&` some exports send (read here as `|\\^&`) was copied
    /// as it came, and a receiver that reads H.2 by position (repeat, component, escape) takes
    /// `\\` for the component delimiter and `^` for the escape.
    #[test]
    fn builder_writes_a_parsed_header_definition_in_standard_form() {
        let text = b"H|\\\\^&|||H550\rP|1\rL|1|N\r";
        let parsed = Message::parse(text).unwrap();
        assert_eq!(*parsed.header().record().delimiters(), Delimiters::STANDARD);
        let mut builder = MessageBuilder::new(RecordBuf::from_record(&parsed.records()[0]));
        for record in &parsed.records()[1..] {
            builder.add(RecordBuf::from_record(record));
        }
        assert_eq!(builder.build().unwrap(), b"H|\\^&|||H550\rP|1\rL|1|N\r");
        // A lone record still writes back as it came.
        let header = RecordBuf::from_record(&parsed.records()[0]);
        assert_eq!(
            header.to_bytes(&Delimiters::STANDARD).unwrap(),
            b"H|\\\\^&|||H550"
        );
    }

    /// Record types are written as the standard's capitals: lower-case letters are read (Ortho
    /// documents allow `q`), but a message relayed through the builder came out with them.
    #[test]
    fn builder_writes_record_types_in_capitals() {
        let parsed = Message::parse(b"h|\\^&\rp|1\ro|1\rr|1|^^^A|1\rc|1|I|x\rl|1|N\r").unwrap();
        let mut builder = MessageBuilder::new(RecordBuf::from_record(&parsed.records()[0]));
        for record in &parsed.records()[1..] {
            builder.add(RecordBuf::from_record(record));
        }
        assert_eq!(
            builder.build().unwrap(),
            b"H|\\^&\rP|1\rO|1\rR|1|^^^A|1\rC|1|I|x\rL|1|N\r"
        );
    }

    /// A value the builder cannot write is reported with its record, not only its field:
    /// "field 4: …" did not say which of a message's records held it.
    #[test]
    fn builder_errors_name_the_record() {
        use crate::{CommentBuilder, HeaderBuilder, PatientBuilder};
        let no_escape = Delimiters::new(b'|', b'\\', b'^', None).unwrap();
        let err = MessageBuilder::with_delimiters(no_escape, HeaderBuilder::new())
            .push(PatientBuilder::new())
            .push(CommentBuilder::new().text("ok"))
            .push(CommentBuilder::new().text("a^b"))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "record 4: field 4: byte 0x5E needs escaping but the delimiter set declares no escape character"
        );
        let BuildError::Record { record, error } = err else {
            panic!("{err:?}")
        };
        assert_eq!(record, 4);
        assert_eq!(
            *error,
            BuildError::CannotEscape {
                field: 4,
                byte: b'^'
            }
        );
    }

    #[test]
    fn builder_checks_hierarchy() {
        use crate::{CommentBuilder, HeaderBuilder, OrderBuilder, PatientBuilder, ResultBuilder};
        let err = MessageBuilder::new(HeaderBuilder::new())
            .push(OrderBuilder::new())
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "record 2: O record has no P record before it"
        );
        let out = MessageBuilder::new(HeaderBuilder::new())
            .push(PatientBuilder::new())
            .push(OrderBuilder::new())
            .push(ResultBuilder::new().value("1"))
            .push(CommentBuilder::new().text("a"))
            .push(ResultBuilder::new().value("2"))
            .push(CommentBuilder::new().text("b"))
            .build()
            .unwrap();
        assert_eq!(
            out,
            b"H|\\^&\rP|1\rO|1\rR|1||1\rC|1||a\rR|2||2\rC|1||b\rL|1|N\r"
        );
        assert!(Message::parse_strict(&out).is_ok());
    }
}
