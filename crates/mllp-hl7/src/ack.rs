//! Building and reading HL7 acknowledgements (ACK messages).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{AckError, AckReadError};
use crate::hl7::{AckCondition, Charset, Delimiters, Message, Value, Version, escape, unescape};
use crate::mllp::{END_BLOCK, START_BLOCK};

/// MSA-1 acknowledgement code (HL7 table 0008).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// `AA`: application accept.
    ApplicationAccept,
    /// `AE`: application error.
    ApplicationError,
    /// `AR`: application reject (failed for a reason unrelated to the content).
    ApplicationReject,
    /// `CA`: commit accept (enhanced mode accept acknowledgement).
    CommitAccept,
    /// `CE`: commit error.
    CommitError,
    /// `CR`: commit reject.
    CommitReject,
}

impl AckCode {
    /// The two-letter code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApplicationAccept => "AA",
            Self::ApplicationError => "AE",
            Self::ApplicationReject => "AR",
            Self::CommitAccept => "CA",
            Self::CommitError => "CE",
            Self::CommitReject => "CR",
        }
    }

    /// Whether this is an accept (commit) acknowledgement code, governed by MSH-15.
    #[must_use]
    pub fn is_commit(self) -> bool {
        matches!(
            self,
            Self::CommitAccept | Self::CommitError | Self::CommitReject
        )
    }

    /// Whether the code reports success (AA or CA).
    #[must_use]
    pub fn is_success(self) -> bool {
        matches!(self, Self::ApplicationAccept | Self::CommitAccept)
    }

    /// Reads a code from bytes.
    #[must_use]
    pub fn from_bytes(code: &[u8]) -> Option<Self> {
        match code.trim_ascii() {
            b"AA" => Some(Self::ApplicationAccept),
            b"AE" => Some(Self::ApplicationError),
            b"AR" => Some(Self::ApplicationReject),
            b"CA" => Some(Self::CommitAccept),
            b"CE" => Some(Self::CommitError),
            b"CR" => Some(Self::CommitReject),
            _ => None,
        }
    }
}

impl fmt::Display for AckCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AckCode {
    type Err = AckReadError;

    fn from_str(code: &str) -> Result<Self, AckReadError> {
        Self::from_bytes(code.as_bytes()).ok_or_else(|| AckReadError::BadCode {
            found: code.to_owned(),
        })
    }
}

/// Original or enhanced acknowledgement mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckMode {
    /// MSH-15 and MSH-16 empty: one application ACK (AA, AE, AR).
    Original,
    /// MSH-15 or MSH-16 valued: an accept ACK (CA, CE, CR) per MSH-15, then an
    /// application ACK per MSH-16.
    Enhanced,
}

impl AckMode {
    /// The mode a message asks for. Values outside table 0155 count as empty, so a
    /// Mindray analyzer's `0` / `2` in MSH-16 keeps original mode.
    #[must_use]
    pub fn of(message: &Message<'_>) -> Self {
        if message.accept_ack_type().is_some() || message.application_ack_type().is_some() {
            Self::Enhanced
        } else {
            Self::Original
        }
    }

    /// The code of a positive acknowledgement in this mode: AA or CA.
    #[must_use]
    pub fn accept_code(self) -> AckCode {
        match self {
            Self::Original => AckCode::ApplicationAccept,
            Self::Enhanced => AckCode::CommitAccept,
        }
    }
}

/// ERR-4 severity (HL7 table 0516).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// `W`: warning.
    Warning,
    /// `E`: error.
    Error,
    /// `F`: fatal.
    Fatal,
}

impl Severity {
    /// The table 0516 code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "W",
            Self::Error => "E",
            Self::Fatal => "F",
        }
    }
}

/// One error to report in an ERR segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    /// HL7 error code (table 0357): 0 accepted, 100 segment sequence error, 101 required
    /// field missing, 102 data type error, 103 table value not found, 200 unsupported
    /// message type, 201 unsupported event, 202 unsupported processing ID, 203
    /// unsupported version, 204 unknown key, 205 duplicate key, 206 record locked, 207
    /// application internal error.
    pub code: u16,
    /// Human-readable text (escaped and encoded when written).
    pub text: String,
    /// Severity (ERR-4, 2.5+).
    pub severity: Severity,
    /// Where: segment id, segment sequence, field (ERR-2 from 2.5, ERR-1 before).
    pub location: Option<(String, usize, usize)>,
}

impl ErrorDetail {
    /// An error with a code, text and severity.
    #[must_use]
    pub fn new(code: u16, text: impl Into<String>, severity: Severity) -> Self {
        Self {
            code,
            text: text.into(),
            severity,
            location: None,
        }
    }

    /// Adds the location: segment id, its sequence in the message (1-based) and the field.
    #[must_use]
    pub fn at(mut self, segment: impl Into<String>, sequence: usize, field: usize) -> Self {
        self.location = Some((segment.into(), sequence, field));
        self
    }
}

/// Builds the acknowledgement of a received message.
///
/// Following HAPI, Mirth, python-hl7 and the HL7 rules: MSH-1/2 are the received
/// delimiters, MSH-3/4 and MSH-5/6 are swapped, MSH-7 is now, MSH-9 is `ACK` (2.1),
/// `ACK^<trigger>` (2.2 to 2.3.1) or `ACK^<trigger>^ACK` (2.4 on, and when MSH-12 is
/// unreadable), MSH-10 a new unique ID, MSH-11, MSH-12 (and MSH-18 when valued) are
/// copied, MSA-2 is the received MSH-10, and an ERR segment is added per error
/// (ERR-2/3/4 from 2.5, ERR-1 before). A raw LF and the MLLP framing bytes VT and FS in a
/// copied field or a text are written as `\X0A\`, `\X0B\`, `\X1C\` (spaces without an
/// escape character), so the ACK can always be framed.
///
/// An FHS/BHS batch parsed as one [`Message`] is answered for its first MSH only (its
/// header accessors read that one); to acknowledge each message of a batch, split it with
/// [`split_messages`](crate::split_messages) and build one ACK per message.
///
/// ```
/// use mllp_hl7::{AckBuilder, AckCode, Message};
///
/// let msg = Message::parse(b"MSH|^~\\&|LAB|HOSP|LIS|HOSP|20240101||ORU^R01|42|P|2.5.1")?;
/// let ack = AckBuilder::new(&msg)
///     .control_id("ACK1")
///     .timestamp("20240101120000")
///     .build()?;
/// assert_eq!(ack, b"MSH|^~\\&|LIS|HOSP|LAB|HOSP|20240101120000||ACK^R01^ACK|ACK1|P|2.5.1\rMSA|AA|42\r");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AckBuilder<'m, 'a> {
    message: &'m Message<'a>,
    code: AckCode,
    text: Option<String>,
    errors: Vec<ErrorDetail>,
    control_id: Option<String>,
    timestamp: Option<String>,
    response_type: Option<(String, String)>,
}

impl<'m, 'a> AckBuilder<'m, 'a> {
    /// A positive acknowledgement of `message`: AA in original mode, CA in enhanced mode.
    #[must_use]
    pub fn new(message: &'m Message<'a>) -> Self {
        Self {
            message,
            code: AckMode::of(message).accept_code(),
            text: None,
            errors: Vec::new(),
            control_id: None,
            timestamp: None,
            response_type: None,
        }
    }

    /// Sets MSA-1.
    #[must_use]
    pub fn code(mut self, code: AckCode) -> Self {
        self.code = code;
        self
    }

    /// Sets MSA-3, the text message.
    #[must_use]
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Adds an ERR segment.
    #[must_use]
    pub fn error(mut self, error: ErrorDetail) -> Self {
        self.errors.push(error);
        self
    }

    /// Sets MSH-10 instead of generating a unique one.
    #[must_use]
    pub fn control_id(mut self, id: impl Into<String>) -> Self {
        self.control_id = Some(id.into());
        self
    }

    /// Sets MSH-7 instead of the current local time.
    #[must_use]
    pub fn timestamp(mut self, timestamp: impl Into<String>) -> Self {
        self.timestamp = Some(timestamp.into());
        self
    }

    /// Writes MSH-9 as the response message `code^trigger` instead of `ACK^{the message's
    /// trigger}`, for a trigger event whose definition names its own acknowledgement (an
    /// `OML^O21` is answered by `ORL^O22`, an `OML^O33` by `ORL^O34`). MSH-9.3, the message
    /// structure, is `code_trigger` from v2.4, as for an ACK; the segments are the same (MSH,
    /// MSA, ERR), which every such response starts with. An accept acknowledgement (CA, CE, CR:
    /// enhanced mode's default code) stays an `ACK`, as HL7 has it: the response type is the
    /// application acknowledgement's, which
    /// [`build_all_required`](Self::build_all_required) writes after it.
    ///
    /// ```
    /// use mllp_hl7::{AckBuilder, Message};
    ///
    /// let oml = Message::parse(b"MSH|^~\\&|LIS|LAB|SIM|LAB|20240101||OML^O21^OML_O21|7|P|2.5.1")?;
    /// let orl = AckBuilder::new(&oml)
    ///     .response_type("ORL", "O22")
    ///     .control_id("R1")
    ///     .timestamp("20240101120000")
    ///     .build()?;
    /// assert_eq!(orl, b"MSH|^~\\&|SIM|LAB|LIS|LAB|20240101120000||ORL^O22^ORL_O22|R1|P|2.5.1\rMSA|AA|7\r");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn response_type(mut self, code: impl Into<String>, trigger: impl Into<String>) -> Self {
        self.response_type = Some((code.into(), trigger.into()));
        self
    }

    /// The MSA-1 code that will be written.
    #[must_use]
    pub fn ack_code(&self) -> AckCode {
        self.code
    }

    /// Whether the sender asked for this acknowledgement: always in original mode; in
    /// enhanced mode per MSH-15 (commit codes) or MSH-16 (application codes), where an
    /// empty field means always.
    #[must_use]
    pub fn is_required(&self) -> bool {
        if AckMode::of(self.message) == AckMode::Original {
            return true;
        }
        let condition = if self.code.is_commit() {
            self.message.accept_ack_type()
        } else {
            self.message.application_ack_type()
        };
        match condition.unwrap_or(AckCondition::Always) {
            AckCondition::Always => true,
            AckCondition::Never => false,
            AckCondition::Error => !self.code.is_success(),
            AckCondition::Success => self.code.is_success(),
        }
    }

    /// Every acknowledgement the sender asked for, in the order to send them, for a receiver
    /// that processes the message at once. With an application code (AA, AE, AR) set, in
    /// enhanced mode, that is an accept acknowledgement `CA` (a plain ACK, MSA-3 as set) if
    /// MSH-15 asks for one, then this application acknowledgement if MSH-16 asks for it (HL7
    /// v2.5 §2.9.3.2). Otherwise it is [`build_if_required`](Self::build_if_required)'s one,
    /// or none. [`build_if_required`](Self::build_if_required) alone left an enhanced-mode
    /// sender without its application acknowledgement (the default code there is `CA`) or,
    /// with an application code set, without the accept acknowledgement it asked for first.
    ///
    /// ```
    /// use mllp_hl7::{AckBuilder, AckCode, AckMessage, Message};
    ///
    /// let msg = Message::parse(b"MSH|^~\\&|LAB|H|LIS|H|20240101||ORU^R01|42|P|2.5.1|||AL|AL")?;
    /// let acks = AckBuilder::new(&msg).code(AckCode::ApplicationAccept).build_all_required()?;
    /// let codes: Vec<AckCode> = acks
    ///     .iter()
    ///     .map(|a| Ok(AckMessage::from_message(&Message::parse(a)?)?.code))
    ///     .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    /// assert_eq!(codes, [AckCode::CommitAccept, AckCode::ApplicationAccept]);
    ///
    /// // MSH-15 NE: no accept acknowledgement; MSH-16 AL: the application one.
    /// let msg = Message::parse(b"MSH|^~\\&|LAB|H|LIS|H|20240101||ORU^R01|43|P|2.5.1|||NE|AL")?;
    /// let acks = AckBuilder::new(&msg).code(AckCode::ApplicationAccept).build_all_required()?;
    /// assert_eq!(acks.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_all_required(&self) -> Result<Vec<Vec<u8>>, AckError> {
        let mut acks = Vec::with_capacity(2);
        if AckMode::of(self.message) == AckMode::Enhanced && !self.code.is_commit() {
            let accept = Self {
                message: self.message,
                code: AckCode::CommitAccept,
                text: self.text.clone(),
                errors: Vec::new(),
                control_id: None,
                timestamp: self.timestamp.clone(),
                response_type: None,
            };
            acks.extend(accept.build_if_required()?);
        }
        acks.extend(self.build_if_required()?);
        Ok(acks)
    }

    /// Builds the ACK only if [`is_required`](Self::is_required).
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_if_required(&self) -> Result<Option<Vec<u8>>, AckError> {
        if self.is_required() {
            self.build().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Builds the ACK: segments terminated by CR, ready to be framed.
    ///
    /// # Errors
    ///
    /// [`AckError::IsAcknowledgement`] for an ACK (never acknowledge an ACK);
    /// [`AckError::NoMsh`] when the message has no MSH segment.
    pub fn build(&self) -> Result<Vec<u8>, AckError> {
        let message = self.message;
        message.msh().ok_or(AckError::NoMsh)?;
        if message.is_ack() {
            return Err(AckError::IsAcknowledgement {
                msh9: String::from_utf8_lossy(message.msh_field(9).raw()).into_owned(),
            });
        }
        let delimiters = message.delimiters();
        let fs = delimiters.field();
        let cs = delimiters.component();
        // The ACK copies MSH-18: text in a set we cannot encode is kept to ASCII, which
        // every set MLLP can carry shares.
        let charset = message.charset().unwrap_or(Charset::Ascii);
        let version = message.version();
        let mut out = Vec::with_capacity(256);

        out.extend_from_slice(b"MSH");
        out.push(fs);
        // MSH-2 from the delimiters the reader used, not the raw field: whatever else the
        // sender put in that field (a stray LF, say) must not reach the ACK.
        out.extend_from_slice(&delimiters.encoding_characters());
        for n in [5, 6, 3, 4] {
            out.push(fs);
            copy_raw(&mut out, message.msh_field(n).raw(), &delimiters);
        }
        out.push(fs);
        match &self.timestamp {
            Some(ts) => out.extend_from_slice(&escape_text(ts.as_bytes(), &delimiters)),
            None => {
                // A message may declare `+` or `-` as a delimiter: leave the offset out then.
                let now = chrono::Local::now();
                let with_offset = now.format("%Y%m%d%H%M%S%z").to_string();
                if with_offset.bytes().any(|b| is_delimiter(b, &delimiters)) {
                    out.extend_from_slice(now.format("%Y%m%d%H%M%S").to_string().as_bytes());
                } else {
                    out.extend_from_slice(with_offset.as_bytes());
                }
            }
        }
        out.push(fs); // MSH-8 security
        out.push(fs);
        let before = |major, minor| version.is_some_and(|v| v.cmp_minor(major, minor).is_lt());
        // An accept acknowledgement is an `ACK` whatever the message: the response type is the
        // application acknowledgement's.
        let response_type = self
            .response_type
            .as_ref()
            .filter(|_| !self.code.is_commit());
        match response_type {
            Some((code, trigger)) => {
                let code = escape_text(code.as_bytes(), &delimiters);
                out.extend_from_slice(&code);
                if !trigger.is_empty() && !before(2, 2) {
                    let trigger = escape_text(trigger.as_bytes(), &delimiters);
                    out.push(cs);
                    out.extend_from_slice(&trigger);
                    if !before(2, 4) {
                        out.push(cs);
                        out.extend_from_slice(&code);
                        out.extend_from_slice(&escape_text(b"_", &delimiters));
                        out.extend_from_slice(&trigger);
                    }
                }
            }
            None => {
                out.extend_from_slice(b"ACK");
                let trigger = message.message_type().trigger;
                if !trigger.is_empty() && !before(2, 2) {
                    out.push(cs);
                    copy_raw(&mut out, trigger, &delimiters);
                    if !before(2, 4) {
                        out.push(cs);
                        out.extend_from_slice(b"ACK");
                    }
                }
            }
        }
        out.push(fs);
        match &self.control_id {
            Some(id) => out.extend_from_slice(&escape_text(id.as_bytes(), &delimiters)),
            None => out.extend_from_slice(new_control_id().as_bytes()),
        }
        out.push(fs);
        copy_raw(&mut out, message.processing_id().raw(), &delimiters);
        out.push(fs);
        copy_raw(&mut out, message.version_id().raw(), &delimiters);
        let charset_id = message.charset_id();
        if !charset_id.is_empty() {
            out.extend(std::iter::repeat_n(fs, 6));
            copy_raw(&mut out, charset_id.raw(), &delimiters);
        }
        out.push(b'\r');

        out.extend_from_slice(b"MSA");
        out.push(fs);
        out.extend_from_slice(self.code.as_str().as_bytes());
        out.push(fs);
        copy_control_id(&mut out, message.control_id().raw(), &delimiters);
        let modern_err = !before(2, 5);
        // Before 2.5 an error's text sits in a subcomponent of ERR-1; a message that
        // declares no subcomponent separator cannot carry it there, so it goes to MSA-3.
        let unplaceable_texts = (!modern_err && delimiters.subcomponent().is_none())
            .then(|| {
                self.errors
                    .iter()
                    .map(|e| e.text.as_str())
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|t| !t.is_empty());
        let msa_text = match (&self.text, &unplaceable_texts) {
            (Some(text), Some(errors)) => Some(format!("{text}; {errors}")),
            (Some(text), None) => Some(text.clone()),
            (None, errors) => errors.clone(),
        };
        if let Some(text) = &msa_text {
            out.push(fs);
            out.extend_from_slice(&escape_text(&charset.encode(text), &delimiters));
        }
        out.push(b'\r');

        for error in &self.errors {
            self.write_err(&mut out, error, modern_err, charset);
        }
        Ok(out)
    }

    fn write_err(&self, out: &mut Vec<u8>, error: &ErrorDetail, modern: bool, charset: Charset) {
        let delimiters = self.message.delimiters();
        let fs = delimiters.field();
        let cs = delimiters.component();
        let text = charset.encode(&error.text);
        let text = escape_text(&text, &delimiters);
        let code = error.code.to_string();
        out.extend_from_slice(b"ERR");
        out.push(fs);
        if modern {
            // ERR-1 (the old composite) stays empty; ERR-2 location, ERR-3 code, ERR-4 severity.
            out.push(fs);
            if let Some((segment, sequence, field)) = &error.location {
                out.extend_from_slice(&escape_text(segment.as_bytes(), &delimiters));
                out.push(cs);
                out.extend_from_slice(sequence.to_string().as_bytes());
                out.push(cs);
                out.extend_from_slice(field.to_string().as_bytes());
            }
            out.push(fs);
            out.extend_from_slice(code.as_bytes());
            out.push(cs);
            out.extend_from_slice(&text);
            out.push(cs);
            out.extend_from_slice(b"HL70357");
            out.push(fs);
            out.extend_from_slice(error.severity.as_str().as_bytes());
        } else {
            // ERR-1: segment ^ sequence ^ field ^ code&text&HL70357.
            if let Some((segment, sequence, field)) = &error.location {
                out.extend_from_slice(&escape_text(segment.as_bytes(), &delimiters));
                out.push(cs);
                out.extend_from_slice(sequence.to_string().as_bytes());
                out.push(cs);
                out.extend_from_slice(field.to_string().as_bytes());
            } else {
                out.push(cs);
                out.push(cs);
            }
            out.push(cs);
            out.extend_from_slice(code.as_bytes());
            if let Some(ss) = delimiters.subcomponent() {
                out.push(ss);
                out.extend_from_slice(&text);
                out.push(ss);
                out.extend_from_slice(b"HL70357");
            }
        }
        out.push(b'\r');
    }
}

fn is_delimiter(byte: u8, d: &Delimiters) -> bool {
    byte == d.field()
        || byte == d.component()
        || [d.repetition(), d.escape(), d.subcomponent(), d.truncation()].contains(&Some(byte))
}

/// The MLLP start and end block bytes. HL7 forbids control characters in data, but strict
/// framing delivers an `FS` not followed by `CR` as data, and an application's text may
/// carry either: written raw into the ACK, an `FS` before a segment's `CR` (or any `FS` in
/// lenient mode, any `VT`) would make an ACK no MLLP encoder can frame. [`escape`] writes them
/// as hexadecimal escapes.
fn is_framing_byte(byte: u8) -> bool {
    byte == START_BLOCK || byte == END_BLOCK
}

/// Escapes text of ours for a field, framing bytes included; a message without an escape
/// character cannot carry delimiters, CR, LF or framing bytes in data, so those become
/// spaces.
fn escape_text<'t>(text: &'t [u8], d: &Delimiters) -> std::borrow::Cow<'t, [u8]> {
    if d.escape().is_some() {
        return escape(text, d);
    }
    text.iter()
        .map(|&b| {
            if is_delimiter(b, d) || b == b'\r' || b == b'\n' || is_framing_byte(b) {
                b' '
            } else {
                b
            }
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Copies a received field as is (same delimiters, so escapes stay valid), except for a
/// raw LF, which a sender may leave inside a field but which could end a segment in the
/// ACK, and the MLLP framing bytes `VT` and `FS`, which strict framing delivers as data
/// but which could keep the ACK from being framed: each becomes `\X0A\`, `\X0B\` or
/// `\X1C\` (a space when no escape character is declared). Only those bytes are rewritten:
/// the field's components, repetitions and escape sequences are kept, and every component
/// or subcomponent decodes as before, and so does the whole field unless a (malformed)
/// escape sequence spans a separator, which the two readings split differently. A
/// (malformed) escape sequence left open across such a byte cannot take a hexadecimal
/// escape, and a lone escape character would pair with one written after it; such a part
/// is unescaped and escaped again.
fn copy_raw(out: &mut Vec<u8>, raw: &[u8], delimiters: &Delimiters) {
    let rewritten = |b: u8| b == b'\n' || is_framing_byte(b);
    if !raw.iter().any(|&b| rewritten(b)) {
        out.extend_from_slice(raw);
        return;
    }
    let Some(esc) = delimiters.escape() else {
        out.extend(raw.iter().map(|&b| if rewritten(b) { b' ' } else { b }));
        return;
    };
    let is_separator = |b: u8| {
        b == delimiters.component()
            || Some(b) == delimiters.repetition()
            || Some(b) == delimiters.subcomponent()
    };
    for piece in raw.split_inclusive(|&b| is_separator(b)) {
        let (part, separator) = match piece.split_last() {
            Some((&last, part)) if is_separator(last) => (part, Some(last)),
            _ => (piece, None),
        };
        // Escape characters pair up (open, close) as `unescape` reads them: a byte after
        // an odd number of them sits inside a sequence.
        let mut escapes = 0usize;
        let rewritten_in_sequence = part.iter().any(|&b| {
            escapes += usize::from(b == esc);
            rewritten(b) && escapes % 2 == 1
        });
        // A part with a lone escape character (an odd count) would pair it with the
        // first escape written after it, a `\X0A\` say, when the whole field is decoded
        // (as a correlation of MSA-2 with MSH-10 does): it is escaped again too, its lone
        // escape character becoming `\E\`.
        let lone_escape = part.iter().filter(|&&b| b == esc).count() % 2 == 1;
        if rewritten_in_sequence || lone_escape {
            out.extend_from_slice(&escape(&unescape(part, delimiters), delimiters));
        } else {
            for &b in part {
                if rewritten(b) {
                    // `\X0A\`, `\X0B\` or `\X1C\`.
                    out.extend_from_slice(&escape(&[b], delimiters));
                } else {
                    out.push(b);
                }
            }
        }
        out.extend(separator);
    }
}

/// Copies MSH-10 into MSA-2 as [`copy_raw`] does, but keeping the whole field's decoding
/// in every case, since that is what a sender compares with the control ID it sent
/// ([`AckMessage::acknowledges`]): when an escape sequence spanning a separator (malformed)
/// made the part-wise copy decode otherwise as a whole, the field is decoded whole and
/// escaped again.
fn copy_control_id(out: &mut Vec<u8>, raw: &[u8], delimiters: &Delimiters) {
    let start = out.len();
    copy_raw(out, raw, delimiters);
    if out[start..] != *raw
        && delimiters.escape().is_some()
        && unescape(&out[start..], delimiters) != unescape(raw, delimiters)
    {
        out.truncate(start);
        out.extend_from_slice(&escape(&unescape(raw, delimiters), delimiters));
    }
}

/// A new message control ID, unique within the process and very likely across
/// processes: base-36 milliseconds, process ID and a counter, 16 characters (HL7 2.3
/// allows 20).
#[must_use]
pub fn new_control_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut id = String::with_capacity(16);
    push_base36(&mut id, millis, 8);
    push_base36(&mut id, u64::from(std::process::id()), 3);
    push_base36(&mut id, count, 5);
    id
}

fn push_base36(out: &mut String, value: u64, width: u32) {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut value = value % 36u64.pow(width);
    let mut digits = [b'0'; 8];
    for slot in digits[..width as usize].iter_mut().rev() {
        *slot = DIGITS[(value % 36) as usize];
        value /= 36;
    }
    out.extend(digits[..width as usize].iter().map(|&b| char::from(b)));
}

/// A received acknowledgement, read from its MSA segment.
///
/// ```
/// use mllp_hl7::{AckCode, AckMessage, Message};
///
/// let msg = Message::parse(b"MSH|^~\\&|LIS||LAB||20240101||ACK^R01^ACK|9|P|2.5.1\rMSA|AE|42|bad OBX")?;
/// let ack = AckMessage::from_message(&msg)?;
/// assert_eq!(ack.code, AckCode::ApplicationError);
/// assert_eq!(ack.acknowledged_id.raw(), b"42");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckMessage<'a> {
    /// MSA-1.
    pub code: AckCode,
    /// MSA-2: the MSH-10 of the message acknowledged (the correlation key).
    pub acknowledged_id: Value<'a>,
    /// MSA-3 text message (may be empty).
    pub text: Value<'a>,
    /// The ACK's own MSH-12 version.
    pub version: Option<Version>,
}

impl<'a> AckMessage<'a> {
    /// Parses `bytes` as an HL7 message and reads its MSA segment, in one call:
    /// [`Message::parse`] then [`from_message`](Self::from_message). The values borrow
    /// from `bytes`.
    ///
    /// ```
    /// use mllp_hl7::{AckCode, AckMessage, AckReadError};
    ///
    /// let ack = AckMessage::parse(b"MSH|^~\\&|LIS||LAB||20240101||ACK^R01^ACK|9|P|2.5.1\rMSA|AA|42")?;
    /// assert_eq!(ack.code, AckCode::ApplicationAccept);
    /// assert!(ack.acknowledges(b"42"));
    ///
    /// let not_an_ack = AckMessage::parse(b"MSH|^~\\&|LAB||LIS||20240101||ORU^R01|43|P|2.5.1");
    /// assert_eq!(not_an_ack, Err(AckReadError::NoMsa));
    /// assert!(matches!(AckMessage::parse(b"\x0bMSH"), Err(AckReadError::Parse(_))));
    /// # Ok::<(), AckReadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AckReadError::Parse`] when the bytes are not an HL7 message (see
    /// [`Message::parse`]); otherwise as [`from_message`](Self::from_message).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, AckReadError> {
        Self::from_message(&Message::parse(bytes)?)
    }

    /// Reads the MSA segment of an ACK (or any message carrying one, e.g. a query
    /// response).
    ///
    /// # Errors
    ///
    /// [`AckReadError`] without an MSA segment or with an unknown MSA-1.
    pub fn from_message(message: &Message<'a>) -> Result<Self, AckReadError> {
        let msa = message.segment(b"MSA").ok_or(AckReadError::NoMsa)?;
        let code_value = msa.field_or_empty(1);
        let code = AckCode::from_bytes(code_value.raw()).ok_or_else(|| AckReadError::BadCode {
            found: String::from_utf8_lossy(code_value.raw()).into_owned(),
        })?;
        Ok(Self {
            code,
            acknowledged_id: msa.field_or_empty(2),
            text: msa.field_or_empty(3),
            version: message.version(),
        })
    }

    /// Whether MSA-2 names the message whose MSH-10 decodes to `control_id` (pass
    /// `message.control_id().decoded()`). Compared unescaped: the receiver may write the
    /// ID with its own delimiters and escapes (`A\F\1` for `A|1`).
    ///
    /// ```
    /// use mllp_hl7::{AckMessage, Message};
    /// let ack = Message::parse(b"MSH|^~\\&|R|F|S|F|20240101||ACK|9|P|2.5.1\rMSA|AA|A\\F\\1").unwrap();
    /// let ack = AckMessage::from_message(&ack).unwrap();
    /// assert!(ack.acknowledges(b"A|1"));
    /// assert!(!ack.acknowledges(b"A\\F\\1"));
    /// ```
    #[must_use]
    pub fn acknowledges(&self, control_id: &[u8]) -> bool {
        self.acknowledged_id.decoded().as_ref() == control_id
    }

    /// Whether this ACK can answer a message with `control_id` (its decoded MSH-10, `None`
    /// when it has none): MSA-2 names that ID, or, for a message without one, is empty. An
    /// ACK naming an ID never answers a message without one: it is a late reply to one that
    /// had it (an application ACK coming after its message's accept ACK).
    ///
    /// ```
    /// use mllp_hl7::AckMessage;
    /// let named = AckMessage::parse(b"MSH|^~\\&|R|F|S|F|1||ACK|9|P|2.5.1\rMSA|AA|A1")?;
    /// let unnamed = AckMessage::parse(b"MSH|^~\\&|R|F|S|F|1||ACK|9|P|2.5.1\rMSA|AE|")?;
    /// assert!(named.answers(Some(b"A1")));
    /// assert!(!named.answers(None));
    /// assert!(unnamed.answers(None));
    /// # Ok::<(), mllp_hl7::AckReadError>(())
    /// ```
    #[must_use]
    pub fn answers(&self, control_id: Option<&[u8]>) -> bool {
        match control_id {
            Some(id) => self.acknowledges(id),
            None => self.acknowledged_id.raw().is_empty(),
        }
    }
}
