//! ASTM E1394 / LIS2-A2 messages, built with `astm-records`.

use astm_records::{Delimiters, FieldBuf, RecordBuf, escape_into};
use chrono::Duration;
use rand::RngExt;

use super::values::{Path, ResultValue};
use super::{Generator, Layout, TextEncoding, ts};
use crate::GenerateError;
use crate::accession::Lane;
use crate::model::{Field, FieldType};

/// One ASTM message: records without terminators, `H` first, `L` last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AstmMessage {
    /// The records, in order.
    pub records: Vec<String>,
    /// The encoding [`to_bytes`](Self::to_bytes) writes them in.
    pub encoding: TextEncoding,
}

impl AstmMessage {
    /// A message of `records` in `encoding`, each record's characters the encoding cannot
    /// write already `?` (see [`TextEncoding::substitute`]).
    ///
    /// ```
    /// use lis_templates::{AstmMessage, TextEncoding};
    /// let message = AstmMessage::new(vec!["R|1|^^^WBC|8.7|10^3/μL".into()], TextEncoding::Ascii);
    /// assert_eq!(message.records[0], "R|1|^^^WBC|8.7|10^3/?L");
    /// ```
    #[must_use]
    pub fn new(records: Vec<String>, encoding: TextEncoding) -> Self {
        let records = records
            .into_iter()
            .map(|r| encoding.substitute_owned(r))
            .collect();
        Self { records, encoding }
    }

    /// Records joined by LF with a trailing LF (how the reference's generators hand messages over).
    pub fn to_lines(&self) -> String {
        self.records.iter().map(|r| format!("{r}\n")).collect()
    }

    /// Records each terminated by CR, as E1394 puts them inside E1381 frames, in the
    /// message's [`encoding`](Self::encoding).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.records.iter().map(|r| r.len() + 1).sum());
        for record in &self.records {
            bytes.extend_from_slice(&self.encoding.encode(record));
            bytes.push(b'\r');
        }
        bytes
    }
}

/// Builds a record from fields already in wire form (the OpenELIS layout writes values unescaped,
/// as the reference does, e.g. `10^3/uL` in R.5). `fields[0]` is the record type; a header's
/// `fields[1]` stands for H.2, the delimiter definition the builder writes.
///
/// Components and repeats stay as given, but what would end the field or the record (`|`, CR,
/// LF) or may not appear in message text (the other C0 controls, LIS1-A §6.6) is escaped
/// (`&F&`, `&Xhh&`): a template value such as the unit `mg|dL` is one value, as in the HL7
/// OpenELIS layout, rather than a failed generation.
pub(super) fn raw_record(fields: &[&str]) -> Result<String, GenerateError> {
    let wire = |f: &str| FieldBuf::raw(wire_safe(f).as_bytes());
    let mut record = RecordBuf::from_fields(fields.iter().map(|f| wire(f)));
    if fields.first() == Some(&"H") {
        record = RecordBuf::new(b'H');
        for (i, f) in fields.iter().enumerate().skip(2) {
            record.set(i + 1, wire(f));
        }
    }
    encode(&record)
}

/// `text` with `|` and control bytes other than TAB escaped, everything else as is.
fn wire_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_byte = |b: u8| b == b'|' || (b < 0x20 && b != b'\t');
    if !text.bytes().any(unsafe_byte) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match u8::try_from(c) {
            Ok(b'|') => out.push_str("&F&"),
            Ok(b) if unsafe_byte(b) => out.push_str(&format!("&X{b:02X}&")),
            _ => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `text` in wire form for a [`raw_record`] field: an ID holding `^` or `&` stays one value.
fn escaped(text: &str) -> Result<String, GenerateError> {
    let mut out = Vec::with_capacity(text.len());
    escape_into(text.as_bytes(), &Delimiters::STANDARD, &mut out).map_err(|byte| {
        GenerateError::InvalidOption {
            option: "template value",
            reason: format!("{text:?} holds byte 0x{byte:02X}, which ASTM cannot carry"),
        }
    })?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn encode(record: &RecordBuf) -> Result<String, GenerateError> {
    let bytes =
        record
            .to_bytes(&Delimiters::STANDARD)
            .map_err(|e| GenerateError::InvalidOption {
                option: "template value",
                reason: e.to_string(),
            })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

const LAST_NAMES: [&str; 8] = [
    "Smith", "Jones", "Rakoto", "Rabe", "Razafy", "Andria", "Brown", "Nirina",
];
const FIRST_NAMES: [&str; 8] = [
    "James", "Marie", "Jean", "Sophie", "Hery", "Fara", "John", "Jane",
];

struct PatientData {
    id: String,
    name: String,
    sex: String,
    dob: String,
}

impl Generator<'_> {
    /// H.5, the sender: the template's own header text, or manufacturer^model^name.
    pub(super) fn sender(&self) -> String {
        let a = &self.template.analyzer;
        self.template
            .identification
            .astm_header
            .clone()
            .unwrap_or_else(|| {
                let clean = |s: &str| s.replace('^', "");
                format!(
                    "{}^{}^{}",
                    clean(&a.manufacturer),
                    clean(&a.model),
                    clean(&a.name)
                )
            })
    }

    pub(super) fn message_id(&mut self) -> String {
        let n: u64 = self.rng.rng().random();
        format!("MSG-{:012x}", n & 0xffff_ffff_ffff)
    }

    fn operator(&mut self) -> String {
        format!("OP-{}", self.rng.rng().random_range(100..1000))
    }

    /// The reference's result time: 5-30 minutes after the message's.
    fn completion(&mut self) -> chrono::NaiveDateTime {
        self.now + self.run_length()
    }

    /// The standard layout's start of a run that ends as the message is made.
    fn run_start(&mut self) -> chrono::NaiveDateTime {
        self.now - self.run_length()
    }

    fn run_length(&mut self) -> Duration {
        Duration::minutes(self.rng.rng().random_range(5..=30))
    }

    fn patient(&mut self) -> PatientData {
        let mut patient = self.template_patient();
        if let Some(id) = &self.patient_id {
            patient.id.clone_from(id);
        }
        patient
    }

    /// The template's `testPatient`, or one made up from the RNG.
    fn template_patient(&mut self) -> PatientData {
        if let Some(p) = &self.template.test_patient {
            return PatientData {
                id: p.id.clone().unwrap_or_else(|| "PAT001".into()),
                name: p.name.clone().unwrap_or_default(),
                sex: p.sex.clone().unwrap_or_else(|| "U".into()),
                dob: p.dob.clone().unwrap_or_default(),
            };
        }
        let rng = self.rng.rng();
        let id = format!(
            "PAT-{}-{:03}",
            self.now.format("%Y%m%d"),
            rng.random_range(1..1000)
        );
        let name = format!(
            "{}^{}",
            LAST_NAMES[rng.random_range(0..LAST_NAMES.len())],
            FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())]
        );
        let dob = format!(
            "{}{:02}{:02}",
            rng.random_range(1950..=2000),
            rng.random_range(1..=12),
            rng.random_range(1..=28)
        );
        let sex = if rng.random_bool(0.5) { "M" } else { "F" };
        PatientData {
            id,
            name,
            sex: sex.into(),
            dob,
        }
    }

    /// The patient message (and, with `astm_config.enable_qc` and a `qcSample`, the QC message
    /// after it, whose values are always the template's: `qcSample.fields` over the fields'
    /// seeds, as in [`ValueMode::Template`](super::ValueMode::Template)).
    pub fn astm(&mut self) -> Result<Vec<AstmMessage>, GenerateError> {
        let lane = self.lane()?;
        let accession = self.accession(lane)?;
        let mut messages = vec![self.astm_patient_message(&accession, None)?];
        let qc_sample = self
            .template
            .astm_config
            .as_ref()
            .is_some_and(|c| c.enable_qc);
        if let (true, Some(sample)) = (qc_sample, self.template.qc_sample.clone()) {
            let id = match &sample.id {
                Some(id) => {
                    self.minter.validate(id, "qcSample.id")?;
                    id.clone()
                }
                None => self.minter.mint(lane)?,
            };
            // The reference builds the control message with use_seed=True whatever the patient
            // message used: the configured qcSample values are what the control must report.
            let values = std::mem::replace(&mut self.values, super::ValueMode::Template);
            let message = self.astm_patient_message(&id, Some(&sample));
            self.values = values;
            messages.push(message?);
        }
        Ok(messages)
    }

    fn astm_patient_message(
        &mut self,
        accession: &str,
        qc: Option<&crate::model::QcSample>,
    ) -> Result<AstmMessage, GenerateError> {
        let template = self.template;
        let patient = match qc {
            Some(_) => PatientData {
                id: format!("QC-PAT-{:03}", self.rng.rng().random_range(1..1000)),
                name: "QC^Control".into(),
                sex: "U".into(),
                dob: String::new(),
            },
            None => self.patient(),
        };
        let now = ts(self.now);
        let config = template.astm_config.clone();
        let mut records = Vec::new();
        let fields: Vec<Field> = self
            .fields()
            .into_iter()
            .map(|f| {
                let mut f = f.clone();
                if let Some(over) = qc.and_then(|s| s.fields.iter().find(|o| o.code == f.code)) {
                    if over.seed_qualitative.is_some() {
                        f.seed_qualitative.clone_from(&over.seed_qualitative);
                    }
                    if over.seed_value.is_some() {
                        f.seed_value.clone_from(&over.seed_value);
                    }
                }
                f
            })
            .collect();
        let action = qc
            .map(|s| s.action_code.clone().unwrap_or_else(|| "Q".into()))
            .unwrap_or_default();
        if self.layout == Layout::OpenElis {
            let sender = self.sender();
            match &config {
                Some(c) => {
                    let id = self.message_id();
                    records.push(raw_record(&[
                        "H",
                        "",
                        &id,
                        "",
                        &sender,
                        "",
                        "",
                        "",
                        "",
                        c.receiver_id.as_deref().unwrap_or(""),
                        "",
                        c.processing_id.as_deref().unwrap_or("P"),
                        c.version_number.as_deref().unwrap_or("LIS2-A2"),
                        &now,
                    ])?);
                }
                // The reference's generator A writes the version in H.12 and the time in H.13.
                None => records.push(raw_record(&[
                    "H", "", "", "", &sender, "", "", "", "", "", "", "LIS2-A2", &now,
                ])?),
            }
            records.push(raw_record(&[
                "P",
                "1",
                "",
                &escaped(&patient.id)?,
                &patient.name,
                "",
                &patient.sex,
                &patient.dob,
            ])?);
            match &config {
                Some(c) => {
                    let first = fields
                        .first()
                        .map(|f| format!("^^^{}", f.code))
                        .unwrap_or_default();
                    let mut o = vec![String::new(); 26];
                    o[0] = "O".into();
                    o[1] = "1".into();
                    o[2] = accession.to_owned();
                    o[4] = first;
                    o[5] = "R".into();
                    o[6].clone_from(&now);
                    o[11].clone_from(&action);
                    o[15] = c.specimen_descriptor.clone().unwrap_or_default();
                    o[25] = "F".into();
                    let refs: Vec<&str> = o.iter().map(String::as_str).collect();
                    records.push(raw_record(&refs)?);
                }
                None => {
                    let model = &template.analyzer.model;
                    records.push(raw_record(&[
                        "O",
                        "1",
                        &format!("{accession}^LAB"),
                        &format!("{model}^{model} Panel"),
                        "",
                        &now,
                    ])?);
                }
            }
            let operator = self.operator();
            let end = ts(self.completion());
            let mut seq = 0;
            for field in &fields {
                let value = self.field_value(field, Path::Astm);
                seq += 1;
                let s = seq.to_string();
                match &config {
                    Some(_) => {
                        let id = match &field.version {
                            Some(v) => format!("^^^{}^{}^{v}^^", field.code, field.name),
                            None => format!("^^^{}", field.code),
                        };
                        if field.kind == FieldType::Numeric {
                            records.push(raw_record(&[
                                "R",
                                &s,
                                &id,
                                &value.text,
                                field.unit_str(),
                                field.normal_range.as_deref().unwrap_or(""),
                                "N",
                                "",
                                "F",
                                "",
                                &operator,
                                &now,
                                &end,
                            ])?);
                        } else {
                            let v = format!("{}^", value.text);
                            records.push(raw_record(&[
                                "R", &s, &id, &v, "", "", "", "", "F", "", &operator, &now, &end,
                            ])?);
                        }
                        // The comment belongs to this result: it follows its R record, before
                        // the complementary results (the reference's order).
                        if value.text == "ERROR" {
                            records.push(raw_record(&[
                                "C",
                                "1",
                                "I",
                                &format!("Error^^Error^^{end}"),
                                "N",
                            ])?);
                        }
                        for comp in &field.complementary_results {
                            seq += 1;
                            let cs = seq.to_string();
                            let cid = format!("{id}{}", comp.name);
                            let cv = match &comp.seed_value {
                                Some(n) => n.to_string(),
                                None => super::values::python_float(qc_westgard_gen::round_to(
                                    self.rng.rng().random_range(0.1..10.0),
                                    2,
                                )),
                            };
                            records.push(raw_record(&[
                                "R",
                                &cs,
                                &cid,
                                &format!("^{cv}"),
                                comp.unit.as_deref().unwrap_or(""),
                                "",
                                "",
                                "",
                                "F",
                                "",
                                &operator,
                                &now,
                                &end,
                            ])?);
                        }
                    }
                    None => {
                        let id = format!("^^^{}", field.code);
                        let (unit, range) = match field.kind {
                            FieldType::Numeric => (
                                field.unit_str(),
                                field.normal_range.as_deref().unwrap_or(""),
                            ),
                            _ => ("", ""),
                        };
                        records.push(raw_record(&[
                            "R",
                            &s,
                            &id,
                            &value.text,
                            unit,
                            range,
                            "N",
                            "",
                            "F",
                            &end,
                        ])?);
                    }
                }
            }
            records.push(raw_record(&["L", "1", "N"])?);
            return Ok(AstmMessage::new(records, self.encoding));
        }

        // Standard layout.
        let config = config.unwrap_or_default();
        let mut h = self.standard_header(&now);
        h.set(3, self.message_id().as_str());
        records.push(encode(&h)?);
        let mut p = RecordBuf::new(b'P');
        p.set_sequence(1)
            .set(4, patient.id.as_str())
            .set(
                6,
                FieldBuf::components(patient.name.split('^').map(str::to_owned)),
            )
            .set(8, patient.dob.as_str())
            .set(9, patient.sex.as_str());
        records.push(encode(&p)?);
        // Drawn in the reference's order (operator, then the run's length). The run ends as
        // the message is made and began 5-30 minutes before, with the specimen ordered and
        // collected by then: no time after the header's (the reference dates the end 5-30
        // minutes after it, and the OpenELIS bridge takes R.13 for the result's time).
        let operator = self.operator();
        let started = ts(self.run_start());
        let mut o = RecordBuf::new(b'O');
        let codes: Vec<String> = fields.iter().map(|f| f.code.clone()).collect();
        o.set_sequence(1)
            .set(3, accession)
            .set(5, FieldBuf::test_codes(codes))
            .set(6, "R")
            .set(7, started.as_str())
            .set(8, started.as_str())
            .set(12, action.as_str())
            .set(16, config.specimen_descriptor.clone().unwrap_or_default())
            .set(26, "F");
        if config.enable_isid {
            o.set(
                4,
                format!("ISID-{}", &accession[accession.len().saturating_sub(6)..]),
            );
        }
        records.push(encode(&o)?);
        let mut seq = 0u32;
        for field in &fields {
            let value = self.field_value(field, Path::Astm);
            seq += 1;
            records.push(encode(&self.standard_result(
                seq, field, &value, None, &operator, &started, &now,
            ))?);
            // A C record comments on the record before it, so it must precede the
            // complementary results.
            if value.text == "ERROR" {
                let mut c = RecordBuf::new(b'C');
                c.set_sequence(1).set(3, "I").set(4, "Error").set(5, "G");
                records.push(encode(&c)?);
            }
            for comp in &field.complementary_results {
                seq += 1;
                let cv = match &comp.seed_value {
                    Some(n) => super::values::plain_number(n.as_f64().unwrap_or(0.0)),
                    None => super::values::plain_number(qc_westgard_gen::round_to(
                        self.rng.rng().random_range(0.1..10.0),
                        2,
                    )),
                };
                let value = ResultValue {
                    text: cv,
                    number: None,
                };
                let mut r = self.standard_result(
                    seq,
                    field,
                    &value,
                    Some(&comp.name),
                    &operator,
                    &started,
                    &now,
                );
                r.set(5, comp.unit.clone().unwrap_or_default())
                    .set(6, "")
                    .set(7, "");
                records.push(encode(&r)?);
            }
        }
        let mut l = RecordBuf::new(b'L');
        l.set_sequence(1).set(3, "N");
        records.push(encode(&l)?);
        Ok(AstmMessage::new(records, self.encoding))
    }

    /// The standard layout's H record: H.5 the sender, H.10 to H.14 from the template's
    /// `astm_config` (receiver, processing ID, version) and `now`.
    pub(super) fn standard_header(&self, now: &str) -> RecordBuf {
        let config = self.template.astm_config.clone().unwrap_or_default();
        let mut h = RecordBuf::new(b'H');
        h.set(
            5,
            FieldBuf::components(self.sender().split('^').map(str::to_owned)),
        )
        .set(10, config.receiver_id.unwrap_or_default())
        .set(12, config.processing_id.unwrap_or_else(|| "P".into()))
        .set(
            13,
            config.version_number.unwrap_or_else(|| self.astm_version()),
        )
        .set(14, now);
        h
    }

    pub(super) fn astm_version(&self) -> String {
        match self.template.protocol.version.as_deref() {
            Some(v) if v.contains("1394") => "E1394-97".into(),
            _ => "LIS2-A2".into(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn standard_result(
        &self,
        seq: u32,
        field: &Field,
        value: &ResultValue,
        complementary: Option<&str>,
        operator: &str,
        start: &str,
        end: &str,
    ) -> RecordBuf {
        let mut id = vec![
            String::new(),
            String::new(),
            String::new(),
            field.code.clone(),
        ];
        if field.version.is_some() || complementary.is_some() {
            id.push(field.name.clone());
            id.push(field.version.clone().unwrap_or_default());
            id.push(String::new());
            id.push(complementary.unwrap_or_default().to_owned());
        }
        let flag = match (field.range(), value.number) {
            (Some(range), Some(v)) => range.flag(v),
            _ => "",
        };
        let mut r = RecordBuf::new(b'R');
        r.set_sequence(seq)
            .set(3, FieldBuf::components(id))
            .set(4, value.text.as_str())
            .set(5, field.unit_str())
            .set(6, field.normal_range.clone().unwrap_or_default())
            .set(7, flag)
            .set(9, "F")
            .set(11, operator)
            .set(12, start)
            .set(13, end);
        r
    }

    /// The QC message from `qc_controls`: O.12 = `Q`, accession on lane 98, one R + Q pair per
    /// control (`Q|n|code^lot^level|value|unit|timestamp`), in template field order.
    ///
    /// The Q records are the OpenELIS mock's QC records, in both layouts, not LIS2-A2 request
    /// information records, which sit under the header: `astm_records::Message` reads each Q
    /// as closing the order, so it reports every R after the first as having no O record
    /// before it and a sequence number out of line (warnings; [`Message::parse_strict`]
    /// refuses the message).
    ///
    /// [`Message::parse_strict`]: astm_records::Message::parse_strict
    pub fn astm_qc(&mut self) -> Result<AstmMessage, GenerateError> {
        let template = self.template;
        let pairs = self.qc_pairs()?;
        let accession = self.accession(Lane::ASTM_QC)?;
        let now = ts(self.now);
        let sender = self.sender();
        let mut records = Vec::new();
        if self.layout == Layout::OpenElis {
            records.push(raw_record(&[
                "H", "", "", "", &sender, "", "", "", "", "", "", "LIS2-A2", &now,
            ])?);
            records.push(raw_record(&[
                "P",
                "1",
                "",
                "QCCTRL001",
                "QC^Control",
                "",
                "U",
                "19000101",
            ])?);
            let mut o = vec![""; 25];
            o[0] = "O";
            o[1] = "1";
            o[2] = &accession;
            o[11] = "Q";
            records.push(raw_record(&o)?);
            for (i, (field, control)) in pairs.iter().enumerate() {
                let value = self.qc_value_checked(control, Path::Astm)?;
                let s = (i + 1).to_string();
                records.push(raw_record(&[
                    "R",
                    &s,
                    &format!("^^^{}", field.code),
                    &value.text,
                    field.unit_str(),
                    field.normal_range.as_deref().unwrap_or(""),
                    "N",
                    "",
                    "F",
                    &now,
                ])?);
                records.push(raw_record(&[
                    "Q",
                    &s,
                    &control.id().astm_q3(),
                    &value.text,
                    field.unit_str(),
                    &now,
                ])?);
            }
            records.push(raw_record(&["L", "1", "N"])?);
            return Ok(AstmMessage::new(records, self.encoding));
        }
        let config = template.astm_config.clone().unwrap_or_default();
        let mut h = self.standard_header(&now);
        h.set(3, self.message_id().as_str());
        records.push(encode(&h)?);
        let mut p = RecordBuf::new(b'P');
        p.set_sequence(1)
            .set(4, "QCCTRL001")
            .set(6, FieldBuf::components(["QC", "Control"]))
            .set(9, "U");
        records.push(encode(&p)?);
        let mut o = RecordBuf::new(b'O');
        let mut codes: Vec<String> = pairs.iter().map(|(f, _)| f.code.clone()).collect();
        codes.dedup();
        o.set_sequence(1)
            .set(3, accession.as_str())
            .set(5, FieldBuf::test_codes(codes))
            .set(6, "R")
            .set(7, now.as_str())
            .set(12, "Q")
            .set(16, config.specimen_descriptor.unwrap_or_default())
            .set(26, "F");
        records.push(encode(&o)?);
        let operator = self.operator();
        for (i, (field, control)) in pairs.iter().enumerate() {
            let value = self.qc_value_checked(control, Path::Astm)?;
            let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let mut r = self.standard_result(seq, field, &value, None, &operator, &now, &now);
            r.set(7, "");
            records.push(encode(&r)?);
            let mut q = RecordBuf::new(b'Q');
            let control_id = control.id();
            q.set_sequence(seq)
                .set(
                    3,
                    FieldBuf::components([control_id.field_code, control_id.lot, control_id.level]),
                )
                .set(4, value.text.as_str())
                .set(5, field.unit_str())
                .set(6, now.as_str());
            records.push(encode(&q)?);
        }
        let mut l = RecordBuf::new(b'L');
        l.set_sequence(1).set(3, "N");
        records.push(encode(&l)?);
        Ok(AstmMessage::new(records, self.encoding))
    }

    /// The checks every QC output makes first: the template has `qc_controls`, and each
    /// names one of its fields (a typo would otherwise drop that control from the output
    /// without a word).
    pub(super) fn check_qc_controls(&self) -> Result<(), GenerateError> {
        let template = self.template;
        if template.qc_controls.is_empty() {
            return Err(GenerateError::NoQc {
                template: template.name.clone(),
                reason: "has no qc_controls".into(),
            });
        }
        match template
            .qc_controls
            .iter()
            .find(|c| template.field(&c.field_code).is_none())
        {
            Some(control) => Err(GenerateError::NoQc {
                template: template.name.clone(),
                reason: format!(
                    "qc_controls entry {} ({}) names field_code {:?}, which is not one of the \
                     template's fields",
                    control.lot(),
                    control.level(),
                    control.field_code
                ),
            }),
            None => Ok(()),
        }
    }

    /// The `qc_controls` entries of the tests asked for, in `qc_controls` order, after the
    /// checks every QC output makes: the template has controls, each names one of its
    /// fields, and at least one is left for the tests asked for.
    pub(super) fn qc_controls_asked(&self) -> Result<Vec<crate::model::QcControl>, GenerateError> {
        let template = self.template;
        self.check_qc_controls()?;
        let fields = self.fields();
        let controls: Vec<_> = template
            .qc_controls
            .iter()
            .filter(|c| fields.iter().any(|f| f.code == c.field_code))
            .cloned()
            .collect();
        if controls.is_empty() {
            return Err(GenerateError::NoQc {
                template: template.name.clone(),
                reason: "none of the tests asked for has a qc_controls entry".into(),
            });
        }
        Ok(controls)
    }

    /// `(field, control)` pairs in template field order; a field with several controls (levels)
    /// gives several pairs.
    pub(super) fn qc_pairs(&self) -> Result<Vec<(Field, crate::model::QcControl)>, GenerateError> {
        let template = self.template;
        self.check_qc_controls()?;
        let pairs: Vec<_> = self
            .fields()
            .into_iter()
            .flat_map(|f| {
                template
                    .qc_controls
                    .iter()
                    .filter(move |c| c.field_code == f.code)
                    .map(move |c| (f.clone(), c.clone()))
            })
            .collect();
        if pairs.is_empty() {
            return Err(GenerateError::NoQc {
                template: template.name.clone(),
                reason: "no fields matched any qc_controls entry; check field_code values".into(),
            });
        }
        Ok(pairs)
    }
}
