//! Typed views (named accessors over a parsed [`Record`]) and typed builders for every record type.
//!
//! Accessors return the raw [`Field`]; decode what you need from it (`.text()`, `.component(n)`,
//! `.timestamp()`). Field names follow E1394-97 / LIS2-A2 (P.27–35 and O.27–31 as reproduced by
//! public implementations).

use std::borrow::Cow;

use crate::build::{FieldBuf, RecordBuf};
use crate::record::{Component, Field, Record, RecordType};
use crate::text::Charset;
use crate::values::{
    AbnormalFlag, NumericValue, ReferenceRange, ReportType, ResultStatus, TestId, test_ids,
};

macro_rules! record_kind {
    (
        $(#[$view_meta:meta])*
        view $view:ident, builder $builder:ident, kind $kind:ident, letter $letter:literal, prefix $prefix:literal;
        $( $number:literal $name:ident $doc:literal; )*
    ) => {
        $(#[$view_meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $view<'a> {
            record: Record<'a>,
        }

        impl<'a> $view<'a> {
            /// Views `record` as this type; `None` if it is another type.
            pub fn new(record: Record<'a>) -> Option<Self> {
                (record.kind() == RecordType::$kind).then_some(Self { record })
            }

            /// The underlying record (for fields beyond the standard list).
            pub const fn record(&self) -> &Record<'a> {
                &self.record
            }

            #[doc = concat!($prefix, ".1: record type (`", $letter, "`).")]
            pub fn record_type(&self) -> Field<'a> {
                self.record.field(1)
            }

            $(
                #[doc = concat!($prefix, ".", stringify!($number), ": ", $doc, ".")]
                pub fn $name(&self) -> Field<'a> {
                    self.record.field($number)
                }
            )*
        }

        #[doc = concat!("Builds a `", $letter, "` record; see [`", stringify!($view), "`] for the fields.")]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $builder {
            record: RecordBuf,
        }

        impl Default for $builder {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $builder {
            /// A record holding only its type (and, for H, the delimiter definition).
            pub fn new() -> Self {
                Self {
                    record: RecordBuf::new($letter.as_bytes()[0]),
                }
            }

            $(
                #[doc = concat!("Sets ", $prefix, ".", stringify!($number), ": ", $doc, ".")]
                #[must_use]
                pub fn $name(mut self, value: impl Into<FieldBuf>) -> Self {
                    self.record.set($number, value);
                    self
                }
            )*

            /// Sets any field by number, e.g. a vendor field beyond the standard list.
            #[must_use]
            pub fn field(mut self, number: usize, value: impl Into<FieldBuf>) -> Self {
                self.record.set(number, value);
                self
            }

            /// The finished record.
            pub fn build(self) -> RecordBuf {
                self.record
            }
        }

        impl From<$builder> for RecordBuf {
            fn from(builder: $builder) -> Self {
                builder.record
            }
        }
    };
}

macro_rules! sequenced {
    ($($view:ident, $builder:ident, $prefix:literal;)*) => {$(
        impl $view<'_> {
            #[doc = concat!($prefix, ".2: sequence number, if it is a decimal number.")]
            pub fn sequence(&self) -> Option<u32> {
                self.record.sequence()
            }
        }

        impl $builder {
            #[doc = concat!("Sets ", $prefix, ".2, the sequence number. [`MessageBuilder`](crate::MessageBuilder) numbers records itself.")]
            #[must_use]
            pub fn sequence(mut self, sequence: u32) -> Self {
                self.record.set_sequence(sequence);
                self
            }
        }
    )*};
}

record_kind! {
    /// `H` message header (E1394 §7, LIS2-A2 H.1–14).
    view Header, builder HeaderBuilder, kind Header, letter "H", prefix "H";
    3 message_control_id "message control ID";
    4 access_password "access password";
    5 sender_name "sender name or ID (e.g. `ARCHITECT^7.01^serial^…`)";
    6 sender_address "sender street address";
    7 reserved "reserved field";
    8 sender_telephone "sender telephone number";
    9 sender_characteristics "characteristics of sender";
    10 receiver_id "receiver ID";
    11 comment "comment or special instructions";
    12 processing_id "processing ID (`P` production, `T` training, `D` debugging, `Q` quality control)";
    13 version "version number (`E1394-97`, `LIS2-A2`, …)";
    14 date_time "date and time of message (`YYYYMMDDHHMMSS`)";
}

impl<'a> Header<'a> {
    /// H.2: the delimiter definition as written (not split).
    pub fn delimiter_definition(&self) -> Field<'a> {
        self.record.field(2)
    }
}

record_kind! {
    /// `P` patient information (LIS2-A2 P.1–35).
    view Patient, builder PatientBuilder, kind Patient, letter "P", prefix "P";
    3 practice_patient_id "practice-assigned patient ID";
    4 laboratory_patient_id "laboratory-assigned patient ID";
    5 patient_id_3 "patient ID number 3";
    6 name "patient name (`last^first^middle^suffix^title`)";
    7 mothers_maiden_name "mother's maiden name";
    8 birthdate "birthdate";
    9 sex "patient sex (`M`, `F`, `U`)";
    10 race "race-ethnic origin";
    11 address "patient address";
    12 reserved "reserved field";
    13 telephone "patient telephone number";
    14 attending_physician "attending physician ID";
    15 special_field_1 "special field 1";
    16 special_field_2 "special field 2";
    17 height "patient height";
    18 weight "patient weight";
    19 diagnosis "known or suspected diagnosis";
    20 active_medications "active medications";
    21 diet "patient diet";
    22 practice_field_1 "practice field 1";
    23 practice_field_2 "practice field 2";
    24 admission_dates "admission and discharge dates";
    25 admission_status "admission status";
    26 location "location";
    27 diagnostic_code_nature "nature of alternative diagnostic code and classifiers";
    28 diagnostic_code "alternative diagnostic code and classification";
    29 religion "patient religion";
    30 marital_status "marital status";
    31 isolation_status "isolation status";
    32 language "language";
    33 hospital_service "hospital service";
    34 hospital_institution "hospital institution";
    35 dosage_category "dosage category";
}

record_kind! {
    /// `O` test order (LIS2-A2 O.1–31).
    view Order, builder OrderBuilder, kind Order, letter "O", prefix "O";
    3 specimen_id "specimen ID (the LIS's)";
    4 instrument_specimen_id "instrument specimen ID (echo it unchanged in host-query replies)";
    5 universal_test_id "universal test ID, repeatable (`^^^code\\^^^code`)";
    6 priority "priority (`S` stat, `A` ASAP, `R` routine)";
    7 requested_date_time "requested or ordered date and time";
    8 collection_date_time "specimen collection date and time";
    9 collection_end_time "collection end time";
    10 collection_volume "collection volume";
    11 collector_id "collector ID";
    12 action_code "action code (`N` new, `A` add, `Q` QC, `C` cancel)";
    13 danger_code "danger code";
    14 clinical_information "relevant clinical information";
    15 received_date_time "date and time specimen received";
    16 specimen_descriptor "specimen descriptor (`type^source`)";
    17 ordering_physician "ordering physician";
    18 physician_telephone "physician's telephone number";
    19 user_field_1 "user field 1";
    20 user_field_2 "user field 2";
    21 laboratory_field_1 "laboratory field 1";
    22 laboratory_field_2 "laboratory field 2";
    23 reported_date_time "date and time results reported or last modified";
    24 instrument_charge "instrument charge to computer system";
    25 instrument_section_id "instrument section ID";
    26 report_type "report type (`O` order, `F` final, `Q` query response, `Y`/`Z` no order)";
    27 reserved "reserved field";
    28 collection_location "location or ward of specimen collection";
    29 nosocomial_infection_flag "nosocomial infection flag";
    30 specimen_service "specimen service";
    31 specimen_institution "specimen institution";
}

impl<'a> Order<'a> {
    /// The test IDs of O.5, one per repeat.
    pub fn test_ids(&self) -> impl Iterator<Item = TestId<'a>> + use<'a> {
        test_ids(&self.universal_test_id())
    }

    /// O.26 classified; `None` when empty (LIS order messages often leave it so: such a record
    /// is an order).
    pub fn report_kind(&self) -> Option<ReportType> {
        ReportType::parse(self.report_type().component(1).raw())
    }
}

record_kind! {
    /// `R` result (LIS2-A2 R.1–14).
    view ResultRecord, builder ResultBuilder, kind Result, letter "R", prefix "R";
    3 universal_test_id "universal test ID";
    4 value "data or measurement value";
    5 units "units";
    6 reference_ranges "reference ranges";
    7 abnormal_flags "result abnormal flags";
    8 abnormality_nature "nature of abnormality testing";
    9 status "result status";
    10 normatives_changed_date "date of change in instrument normative values or units";
    11 operator_id "operator identification";
    12 started_date_time "date and time test started";
    13 completed_date_time "date and time test completed";
    14 instrument_id "instrument identification";
}

impl<'a> ResultRecord<'a> {
    /// The test ID (first repeat of R.3).
    pub fn test_id(&self) -> TestId<'a> {
        TestId::new(self.universal_test_id().first())
    }

    /// The test code wherever the vendor put it; see [`TestId::test_code`].
    pub fn test_code(&self) -> Option<Cow<'a, str>> {
        self.test_id().test_code()
    }

    /// [`test_code`](Self::test_code) decoded with the given character set.
    pub fn test_code_as(&self, charset: Charset) -> Option<Cow<'a, str>> {
        self.test_id().test_code_as(charset)
    }

    /// R.4 as text (escapes decoded, Latin-1): its first component, or its second when the
    /// first is empty or blank. GeneXpert writes `qualitative^quantitative`, so a Ct value comes as
    /// `^24.7`.
    pub fn value_text(&self) -> Cow<'a, str> {
        self.value_text_as(Charset::Latin1)
    }

    /// [`value_text`](Self::value_text) decoded with the given character set, for links that
    /// agreed on UTF-8.
    ///
    /// ```
    /// use astm_records::{Charset, Delimiters, Record, ResultRecord};
    /// let raw = "R|1|^^^HBsAg|n\u{e9}gatif|\u{b5}mol/L";
    /// let result = ResultRecord::new(Record::parse(raw.as_bytes(), &Delimiters::STANDARD)?).unwrap();
    /// assert_eq!(result.value_text_as(Charset::Auto), "n\u{e9}gatif");
    /// assert_eq!(result.units_text_as(Charset::Auto), "\u{b5}mol/L");
    /// assert_eq!(result.value_text(), "n\u{c3}\u{a9}gatif");
    /// # Ok::<(), astm_records::RecordError>(())
    /// ```
    pub fn value_text_as(&self, charset: Charset) -> Cow<'a, str> {
        self.result_value().text_as(charset)
    }

    /// R.4 read as a number, if it is one (`5.8`, `7,41`, `> 15000`, `1.2E+05`, GeneXpert's
    /// `^24.7`); the component read is [`value_text`](Self::value_text)'s.
    pub fn numeric_value(&self) -> Option<NumericValue> {
        NumericValue::parse(&self.result_value().unescaped())
    }

    /// The component of R.4 that holds the result: the first, or the second when the first
    /// is empty or only spaces (fixed-width senders pad) and the second is not, the same
    /// rule as [`TestId::test_code`]'s for GeneXpert.
    fn result_value(&self) -> Component<'a> {
        let value = self.value();
        let first = value.component(1);
        let second = value.component(2);
        let blank = |c: &Component<'a>| c.raw().trim_ascii().is_empty();
        if blank(&first) && !blank(&second) {
            second
        } else {
            first
        }
    }

    /// R.5 component 1 as text (escapes decoded, Latin-1).
    pub fn units_text(&self) -> Cow<'a, str> {
        self.units_text_as(Charset::Latin1)
    }

    /// [`units_text`](Self::units_text) decoded with the given character set.
    pub fn units_text_as(&self, charset: Charset) -> Cow<'a, str> {
        self.units().component(1).text_as(charset)
    }

    /// R.6 read as a range, if this grammar knows its form.
    pub fn reference_range(&self) -> Option<ReferenceRange> {
        ReferenceRange::from_field(&self.reference_ranges())
    }

    /// R.7 flags, one per non-empty repeat.
    pub fn abnormal_flag_list(&self) -> impl Iterator<Item = AbnormalFlag> + use<'a> {
        self.abnormal_flags()
            .repeats()
            .filter(|r| !r.is_empty())
            .map(|r| AbnormalFlag::parse(&r.component(1).unescaped()))
    }

    /// R.9 read as a status; `None` when empty.
    pub fn result_status(&self) -> Option<ResultStatus> {
        ResultStatus::parse(self.status().raw())
    }
}

record_kind! {
    /// `C` comment (LIS2-A2 C.1–5); attaches to the record before it.
    view Comment, builder CommentBuilder, kind Comment, letter "C", prefix "C";
    3 source "comment source (`I` instrument, `L` computer system, `P` practice)";
    4 text "comment text (components and repeats allowed)";
    5 comment_type "comment type (`G` generic, `I` instrument flag, …)";
}

record_kind! {
    /// `Q` request information, the host query (LIS2-A2 Q.1–13).
    view Query, builder QueryBuilder, kind Query, letter "Q", prefix "Q";
    3 starting_range_id "starting range ID number (`patient^specimen^…`)";
    4 ending_range_id "ending range ID number";
    5 universal_test_id "universal test ID (`ALL` or `^^^ALL`)";
    6 request_time_limits "nature of request time limits";
    7 beginning_date_time "beginning request results date and time";
    8 ending_date_time "ending request results date and time";
    9 requesting_physician "requesting physician name";
    10 physician_telephone "requesting physician telephone number";
    11 user_field_1 "user field 1";
    12 user_field_2 "user field 2";
    13 status_code "request information status code (`O` orders only, `A` abort last request, …)";
}

impl<'a> Query<'a> {
    /// The specimen ID the instrument asks about: Q.3 component 2 (where instruments put it), else
    /// a Q.3 of one bare component other than `ALL` (`Q|1|S123||…`). Component 1 of a Q.3 with
    /// components is the patient ID ([`requested_patient_id`](Self::requested_patient_id)), not
    /// a specimen: `PAT42^` gives `None`. `None` too when both are empty, except in the Roche
    /// cobas layout.
    ///
    /// Roche cobas analyzers (cobas e 411 "cobas type", cobas 6000 family) send nine components,
    /// `^^SampleID^SequenceNo^CarrierNo^PositionNo^^SampleType^ContainerType`, with the sample ID in
    /// component 3 (cobas e 411 Host Interface Manual v2.3, request information record). When
    /// components 1 and 2 are empty and Q.3 has at least nine components, component 3 is the
    /// specimen ID. The older eight-component Elecsys layout (`^SampleID^SequenceNo^…`) keeps the ID in
    /// component 2, and its component 3 is a sequence number, so a query without a sample ID
    /// (`^^3^0007^2^^SAMPLE^NORMAL`) still gives `None`.
    ///
    /// Sysmex analyzers (XE, XN, XS) send four components, `rack^tube^sample number^attribute`,
    /// the sample number right-justified in 22 characters and the attribute one letter (`B`
    /// barcode, `M` manual, `A` automatic): with that shape component 3 is the specimen ID, and
    /// there is no patient ID. Leading and trailing spaces are removed from the ID;
    /// [`requested_specimen`](Self::requested_specimen) gives the component as sent.
    ///
    /// ```
    /// use astm_records::{Delimiters, Query, Record};
    /// for (raw, id) in [
    ///     ("Q|1|2^1^          1234567890^B||||20011001153000", Some("1234567890")),
    ///     ("Q|1|^^                    27^M||||20240627135407", Some("27")),
    ///     ("Q|1|^0000040735||^^^ALL||||||||O", Some("0000040735")),
    ///     ("Q|1|^^000004^40^0^5^^S1^SC||ALL||||||||O", Some("000004")),
    ///     ("Q|1|^000002^3^@95^2^^SAMPLE^NORMAL||ALL||||||||O", Some("000002")),
    ///     ("Q|1|^^3^0007^2^^SAMPLE^NORMAL||ALL||||||||O", None),
    ///     ("Q|1|S123||ALL||||||||O", Some("S123")),
    ///     ("Q|1|PAT42^||ALL||||||||O", None),
    ///     ("Q|1|ALL||ALL||||||||O", None),
    /// ] {
    ///     let query = Query::new(Record::parse(raw.as_bytes(), &Delimiters::STANDARD)?).unwrap();
    ///     assert_eq!(query.requested_specimen_id().as_deref(), id);
    /// }
    /// # Ok::<(), astm_records::RecordError>(())
    /// ```
    pub fn requested_specimen_id(&self) -> Option<Cow<'a, str>> {
        self.requested_specimen_id_as(Charset::Latin1)
    }

    /// [`requested_specimen_id`](Self::requested_specimen_id) decoded with the given character set.
    pub fn requested_specimen_id_as(&self, charset: Charset) -> Option<Cow<'a, str>> {
        self.requested_specimen()
            .map(|c| crate::values::trimmed_text(&c, charset))
    }

    /// Q.3 in Sysmex's layout `rack^tube^sample number^attribute`: its sample number.
    fn sysmex_sample_number(&self) -> Option<Component<'a>> {
        let range = self.starting_range_id();
        let attribute = range.component(4);
        let attribute = attribute.raw().trim_ascii();
        let sample = range.component(3);
        (range.first().components().count() == 4
            && attribute.len() == 1
            && attribute[0].is_ascii_uppercase()
            && !sample.raw().trim_ascii().is_empty())
        .then_some(sample)
    }

    /// The component [`requested_specimen_id`](Self::requested_specimen_id) reads, to decode
    /// it with another character set or take its bytes.
    ///
    /// ```
    /// use astm_records::{Charset, Delimiters, Query, Record};
    /// let raw = "Q|1|^S-\u{c9}1||ALL||||||||O";
    /// let query = Query::new(Record::parse(raw.as_bytes(), &Delimiters::STANDARD)?).unwrap();
    /// let specimen = query.requested_specimen().unwrap();
    /// assert_eq!(specimen.text_as(Charset::Auto), "S-\u{c9}1");
    /// assert_eq!(&*specimen.unescaped(), "S-\u{c9}1".as_bytes());
    /// # Ok::<(), astm_records::RecordError>(())
    /// ```
    pub fn requested_specimen(&self) -> Option<Component<'a>> {
        if let Some(sample) = self.sysmex_sample_number() {
            return Some(sample);
        }
        let range = self.starting_range_id();
        let components = range.first().components().count();
        let bare = (components == 1)
            .then(|| range.component(1))
            .filter(|c| !c.raw().trim_ascii().eq_ignore_ascii_case(b"ALL"));
        let cobas = (components >= 9).then(|| range.component(3));
        [Some(range.component(2)), bare, cobas]
            .into_iter()
            .flatten()
            .find(|c| !c.is_empty())
    }

    /// The patient ID the instrument asks about: Q.3 component 1 when Q.3 has components
    /// (`PAT42^`, `PAT42^S1`), except in Sysmex's layout (see
    /// [`requested_specimen_id`](Self::requested_specimen_id)), whose component 1 is a rack. `None` when it is empty or Q.3 is one bare value, which
    /// [`requested_specimen_id`](Self::requested_specimen_id) reads as the specimen.
    ///
    /// ```
    /// use astm_records::{Delimiters, Query, Record};
    /// for (raw, id) in [
    ///     ("Q|1|PAT42^||ALL||||||||O", Some("PAT42")),
    ///     ("Q|1|PAT42^S1||ALL||||||||O", Some("PAT42")),
    ///     ("Q|1|^S1||ALL||||||||O", None),
    ///     ("Q|1|S1||ALL||||||||O", None),
    ///     // Sysmex: rack^tube^sample number^attribute.
    ///     ("Q|1|2^1^          1234567890^B||||20011001153000", None),
    /// ] {
    ///     let query = Query::new(Record::parse(raw.as_bytes(), &Delimiters::STANDARD)?).unwrap();
    ///     assert_eq!(query.requested_patient_id().as_deref(), id);
    /// }
    /// # Ok::<(), astm_records::RecordError>(())
    /// ```
    pub fn requested_patient_id(&self) -> Option<Cow<'a, str>> {
        self.requested_patient_id_as(Charset::Latin1)
    }

    /// [`requested_patient_id`](Self::requested_patient_id) decoded with the given character set.
    pub fn requested_patient_id_as(&self, charset: Charset) -> Option<Cow<'a, str>> {
        let range = self.starting_range_id();
        let patient = range.component(1);
        // Sysmex's component 1 is a rack number.
        (range.first().components().count() > 1
            && !patient.is_empty()
            && self.sysmex_sample_number().is_none())
        .then(|| patient.text_as(charset))
    }
}

record_kind! {
    /// `M` manufacturer information; fields after M.2 are vendor-defined.
    view Manufacturer, builder ManufacturerBuilder, kind Manufacturer, letter "M", prefix "M";
}

record_kind! {
    /// `S` scientific record; fields after S.2 are rarely used (read them by number).
    view Scientific, builder ScientificBuilder, kind Scientific, letter "S", prefix "S";
}

record_kind! {
    /// `L` message terminator (LIS2-A2 L.1–3).
    view Terminator, builder TerminatorBuilder, kind Terminator, letter "L", prefix "L";
    3 termination_code "termination code (`N` normal, …)";
}

sequenced! {
    Patient, PatientBuilder, "P";
    Order, OrderBuilder, "O";
    ResultRecord, ResultBuilder, "R";
    Comment, CommentBuilder, "C";
    Query, QueryBuilder, "Q";
    Manufacturer, ManufacturerBuilder, "M";
    Scientific, ScientificBuilder, "S";
    Terminator, TerminatorBuilder, "L";
}

/// L.3 termination codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TerminationCode {
    /// `N` normal termination.
    Normal,
    /// `T` sender aborted.
    SenderAborted,
    /// `R` receiver requested abort.
    ReceiverAborted,
    /// `E` unknown system error.
    SystemError,
    /// `Q` error in the last request for information.
    QueryError,
    /// `I` no information available from the last query.
    NoInformation,
    /// `F` last request for information processed.
    QueryProcessed,
    /// Anything else.
    Other,
}

impl TerminationCode {
    /// The code as LIS2-A2 writes it (`N`, `Q`, `I` …), which [`Terminator::code`] reads back;
    /// `None` for [`Other`](Self::Other), which stands for text this type does not keep. A code
    /// converts into a builder's field ([`FieldBuf`]) too, e.g. to end a reply to a host query
    /// that found nothing with `L|1|I`.
    ///
    /// ```
    /// use astm_records::{Delimiters, TerminationCode, TerminatorBuilder};
    /// assert_eq!(TerminationCode::NoInformation.code(), Some("I"));
    /// let l = TerminatorBuilder::new().sequence(1).termination_code(TerminationCode::NoInformation);
    /// assert_eq!(l.build().to_bytes(&Delimiters::STANDARD)?, b"L|1|I");
    /// # Ok::<(), astm_records::BuildError>(())
    /// ```
    pub const fn code(self) -> Option<&'static str> {
        Some(match self {
            Self::Normal => "N",
            Self::SenderAborted => "T",
            Self::ReceiverAborted => "R",
            Self::SystemError => "E",
            Self::QueryError => "Q",
            Self::NoInformation => "I",
            Self::QueryProcessed => "F",
            Self::Other => return None,
        })
    }
}

/// The code's [`code`](TerminationCode::code); [`TerminationCode::Other`] has none and writes an
/// empty field (write the sender's letter instead).
impl From<TerminationCode> for FieldBuf {
    fn from(value: TerminationCode) -> Self {
        value.code().map_or_else(Self::empty, Self::text)
    }
}

impl Terminator<'_> {
    /// L.3 read as a code; `None` when empty.
    pub fn code(&self) -> Option<TerminationCode> {
        Some(match self.termination_code().raw().trim_ascii() {
            b"" => return None,
            b"N" | b"n" => TerminationCode::Normal,
            b"T" | b"t" => TerminationCode::SenderAborted,
            b"R" | b"r" => TerminationCode::ReceiverAborted,
            b"E" | b"e" => TerminationCode::SystemError,
            b"Q" | b"q" => TerminationCode::QueryError,
            b"I" | b"i" => TerminationCode::NoInformation,
            b"F" | b"f" => TerminationCode::QueryProcessed,
            _ => TerminationCode::Other,
        })
    }
}

/// A record viewed as its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypedRecord<'a> {
    /// `H`
    Header(Header<'a>),
    /// `P`
    Patient(Patient<'a>),
    /// `O`
    Order(Order<'a>),
    /// `R`
    Result(ResultRecord<'a>),
    /// `C`
    Comment(Comment<'a>),
    /// `Q`
    Query(Query<'a>),
    /// `M`
    Manufacturer(Manufacturer<'a>),
    /// `S`
    Scientific(Scientific<'a>),
    /// `L`
    Terminator(Terminator<'a>),
    /// Any other type.
    Other(Record<'a>),
}

impl<'a> Record<'a> {
    /// This record as its typed view.
    pub fn typed(&self) -> TypedRecord<'a> {
        let record = *self;
        match self.kind() {
            RecordType::Header => TypedRecord::Header(Header { record }),
            RecordType::Patient => TypedRecord::Patient(Patient { record }),
            RecordType::Order => TypedRecord::Order(Order { record }),
            RecordType::Result => TypedRecord::Result(ResultRecord { record }),
            RecordType::Comment => TypedRecord::Comment(Comment { record }),
            RecordType::Query => TypedRecord::Query(Query { record }),
            RecordType::Manufacturer => TypedRecord::Manufacturer(Manufacturer { record }),
            RecordType::Scientific => TypedRecord::Scientific(Scientific { record }),
            RecordType::Terminator => TypedRecord::Terminator(Terminator { record }),
            RecordType::Other => TypedRecord::Other(record),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Delimiters;

    fn parse(raw: &str) -> Record<'_> {
        Record::parse(raw.as_bytes(), &Delimiters::STANDARD).unwrap()
    }

    /// A space-padded empty first component of R.4 is passed over as an empty one is; it
    /// was returned as the value (`" "`, no number).
    #[test]
    fn a_blank_first_value_component_gives_way_to_the_second() {
        let padded = ResultRecord::new(parse("R|1|^^^A| ^24.7")).unwrap();
        assert_eq!(padded.value_text(), "24.7");
        assert_eq!(padded.numeric_value().unwrap().value, 24.7);
        let both_blank = ResultRecord::new(parse("R|1|^^^A| ^ ")).unwrap();
        assert_eq!(both_blank.value_text(), " ");
        let first = ResultRecord::new(parse("R|1|^^^A|POS^24.7")).unwrap();
        assert_eq!(first.value_text(), "POS");
    }

    #[test]
    fn result_conveniences() {
        let r = ResultRecord::new(parse(
            "R|1|^^^NA^Sodium|7.273|mmol/l|10-120|H\\W|N|F||Val.Autom.^Smith |201009261006|201009261034^201009261033|Architect",
        ))
        .unwrap();
        assert_eq!(r.sequence(), Some(1));
        assert_eq!(r.test_code().as_deref(), Some("NA"));
        assert_eq!(r.test_id().component(5).text(), "Sodium");
        assert_eq!(r.numeric_value().unwrap().value, 7.273);
        assert_eq!(r.units_text(), "mmol/l");
        assert_eq!(
            r.reference_range(),
            Some(ReferenceRange {
                low: Some(10.0),
                high: Some(120.0)
            })
        );
        assert_eq!(
            r.abnormal_flag_list().collect::<Vec<_>>(),
            [AbnormalFlag::High, AbnormalFlag::Worse]
        );
        assert_eq!(r.result_status(), Some(ResultStatus::Final));
        assert_eq!(r.operator_id().component(2).text(), "Smith ");
        assert_eq!(
            r.completed_date_time()
                .timestamp()
                .unwrap()
                .unwrap()
                .to_string(),
            "20100926103400"
        );
        assert_eq!(r.instrument_id().text(), "Architect");
        assert!(Order::new(*r.record()).is_none());
    }

    #[test]
    fn bad_timestamp_does_not_fail_the_record() {
        let r = ResultRecord::new(parse("R|1|^^^GLU|5|||||F|||2024-13-01|")).unwrap();
        assert!(r.completed_date_time().timestamp().unwrap().is_none());
        assert!(r.started_date_time().timestamp().is_err());
        assert_eq!(r.value_text(), "5");
    }

    #[test]
    fn typed_dispatch_and_other_views() {
        let h =
            parse("H|\\^&|||ARCHITECT^7.01^F5260044206^H1P1O1R1C1Q1L1|||||||P|1|20120225131842");
        let TypedRecord::Header(header) = h.typed() else {
            panic!("not a header")
        };
        assert_eq!(header.delimiter_definition().raw(), b"\\^&");
        assert_eq!(header.sender_name().component(1).text(), "ARCHITECT");
        assert_eq!(header.processing_id().text(), "P");
        assert_eq!(header.version().text(), "1");
        assert_eq!(
            header.date_time().timestamp().unwrap().unwrap().to_string(),
            "20120225131842"
        );

        let q = Query::new(parse("Q|1|^0000040735||^^^ALL||||||||O")).unwrap();
        assert_eq!(q.requested_specimen_id().as_deref(), Some("0000040735"));
        // Roche cobas e 411 "cobas type" host query: the sample ID is component 3 (Host Interface
        // Manual v2.3, p. 51); a LIS that found no ID could not answer, and the analyzer cancels
        // the query after 15 s.
        let cobas = Query::new(parse("Q|1|^^000004^40^0^5^^S1^SC||ALL||||||||O")).unwrap();
        assert_eq!(cobas.requested_specimen_id().as_deref(), Some("000004"));
        // The Elecsys layout without a sample ID has a sequence number in component 3.
        let elecsys = Query::new(parse("Q|1|^^3^0007^2^^SAMPLE^NORMAL||ALL||||||||O")).unwrap();
        assert_eq!(elecsys.requested_specimen_id(), None);
        assert_eq!(q.status_code().text(), "O");

        let o = Order::new(parse("O|1|S1||^^^A\\^^^B^x|R")).unwrap();
        let codes: Vec<_> = o
            .test_ids()
            .filter_map(|t| t.test_code().map(Cow::into_owned))
            .collect();
        assert_eq!(codes, ["A", "B"]);

        let l = Terminator::new(parse("L|1|N")).unwrap();
        assert_eq!(l.code(), Some(TerminationCode::Normal));
        assert!(matches!(parse("X|1").typed(), TypedRecord::Other(_)));
        assert!(matches!(
            parse("M|1|x").typed(),
            TypedRecord::Manufacturer(_)
        ));
        assert!(matches!(parse("S|1").typed(), TypedRecord::Scientific(_)));
    }

    #[test]
    fn report_kind_classifies_o26() {
        let kind = |o26: &str| {
            let text = format!("H|\\^&\rO|1|S1||^^^A|R||||||||||||||||||||{o26}\r");
            let message = crate::Message::parse(text.as_bytes()).unwrap();
            let TypedRecord::Order(order) = message.records()[1].typed() else {
                panic!("not an order")
            };
            order.report_kind()
        };
        assert_eq!(kind(""), None);
        assert_eq!(kind("O"), Some(ReportType::Order));
        assert_eq!(kind("q"), Some(ReportType::QueryResponse));
        assert_eq!(kind(" F "), Some(ReportType::Final));
        assert_eq!(kind("Y"), Some(ReportType::NoOrder));
        assert_eq!(kind("Z^x"), Some(ReportType::NoPatient));
        assert_eq!(kind("FF"), Some(ReportType::Other));
        for (letter, order, results) in [
            ("O", true, false),
            ("Q", true, false),
            ("C", false, true),
            ("P", false, true),
            ("F", false, true),
            ("X", false, true),
            ("I", false, true),
            ("Y", false, false),
            ("Z", false, false),
        ] {
            let k = kind(letter).unwrap();
            assert_eq!(
                (k.is_order(), k.reports_results()),
                (order, results),
                "{letter}"
            );
        }
    }

    #[test]
    fn builders_write_standard_positions() {
        let d = Delimiters::STANDARD;
        let p = PatientBuilder::new()
            .sequence(1)
            .laboratory_patient_id("PID-7")
            .name(FieldBuf::components(["Doe", "Jane"]))
            .sex("F")
            .build();
        assert_eq!(p.to_bytes(&d).unwrap(), b"P|1||PID-7||Doe^Jane|||F");
        let r = ResultBuilder::new()
            .sequence(2)
            .universal_test_id(FieldBuf::test_code("WBC"))
            .value("5.8")
            .units("10^3/uL")
            .status("F")
            .build();
        assert_eq!(r.to_bytes(&d).unwrap(), b"R|2|^^^WBC|5.8|10&S&3/uL||||F");
        let h = HeaderBuilder::new()
            .sender_name("LIS")
            .processing_id("P")
            .version("LIS2-A2")
            .build();
        assert_eq!(h.to_bytes(&d).unwrap(), b"H|\\^&|||LIS|||||||P|LIS2-A2");
        let q = QueryBuilder::new()
            .sequence(1)
            .starting_range_id(FieldBuf::components(["", "S1"]))
            .status_code("O")
            .build();
        assert_eq!(q.to_bytes(&d).unwrap(), b"Q|1|^S1||||||||||O");
        let c = CommentBuilder::new()
            .sequence(1)
            .source("L")
            .text("done & dusted")
            .comment_type("G")
            .build();
        assert_eq!(c.to_bytes(&d).unwrap(), b"C|1|L|done &E& dusted|G");
        let o = OrderBuilder::new()
            .sequence(1)
            .specimen_id("S1")
            .universal_test_id(FieldBuf::test_codes(["A", "B"]))
            .report_type("Q")
            .build();
        assert_eq!(
            o.to_bytes(&d).unwrap(),
            b"O|1|S1||^^^A\\^^^B|||||||||||||||||||||Q"
        );
        let m = ManufacturerBuilder::new().sequence(1).field(3, "X").build();
        assert_eq!(m.to_bytes(&d).unwrap(), b"M|1|X");
        let s = ScientificBuilder::default().sequence(1).build();
        assert_eq!(s.to_bytes(&d).unwrap(), b"S|1");
        let l = TerminatorBuilder::new()
            .sequence(1)
            .termination_code("N")
            .build();
        assert_eq!(l.to_bytes(&d).unwrap(), b"L|1|N");
    }
}
