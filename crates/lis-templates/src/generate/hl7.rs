//! HL7 v2 ORU^R01 messages. `mllp-hl7` escapes the values (it has no segment builder; see the crate
//! README).

use mllp_hl7::{Delimiters, escape};

use super::values::Path;
use super::{Generator, Layout, TextEncoding, ts};
use crate::GenerateError;
use crate::model::FieldType;

/// One HL7 v2 message: segments without terminators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7Message {
    /// The segments, `MSH` first.
    pub segments: Vec<String>,
    /// The encoding [`to_bytes`](Self::to_bytes) writes them in.
    pub encoding: TextEncoding,
}

impl Hl7Message {
    /// Segments each terminated by CR (the wire form inside MLLP), as text: what
    /// [`to_bytes`](Self::to_bytes) encodes.
    pub fn to_wire(&self) -> String {
        self.segments.iter().map(|s| format!("{s}\r")).collect()
    }

    /// Segments one per line (for display).
    pub fn to_lines(&self) -> String {
        self.segments.iter().map(|s| format!("{s}\n")).collect()
    }

    /// Segments each terminated by CR, as bytes: what [`mllp_hl7::Message::parse`] reads
    /// and `MllpClient::send` takes: [`to_wire`](Self::to_wire) in the message's
    /// [`encoding`](Self::encoding), named as
    /// [`AstmMessage::to_bytes`](crate::AstmMessage::to_bytes) is.
    ///
    /// ```
    /// use lis_templates::{AccessionMinter, GenerateOptions, Output, TemplateSet, generate};
    ///
    /// let templates = TemplateSet::embedded()?;
    /// let options = GenerateOptions { seed: Some(1), ..GenerateOptions::default() };
    /// let minter = AccessionMinter::new();
    /// let Output::Hl7(oru) = generate(templates.get("mindray_bs200")?, &minter, &options, false)?
    /// else {
    ///     unreachable!()
    /// };
    /// let bytes = oru.to_bytes();
    /// let message = mllp_hl7::Message::parse(&bytes)?;
    /// assert_eq!(message.segment_count(), oru.segments.len());
    /// assert_eq!(message.segments_named(b"OBX").count(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.segments.iter().map(|s| s.len() + 1).sum());
        for segment in &self.segments {
            bytes.extend_from_slice(&self.encoding.encode(segment));
            bytes.push(b'\r');
        }
        bytes
    }
}

/// Escapes one value (component text) for HL7.
pub(super) fn esc_standard(value: &str) -> String {
    String::from_utf8_lossy(&escape(value.as_bytes(), &Delimiters::STANDARD)).into_owned()
}

/// The reference writes values unescaped (`10^3/uL` in OBX-6); the OpenELIS layout does the same
/// except for the field separator and line breaks, which would break the message.
fn esc_openelis(value: &str) -> String {
    value
        .replace('|', "\\F\\")
        .replace('\r', "\\X0D\\")
        .replace('\n', "\\X0A\\")
}

/// Components escaped and joined with `^`.
fn comps(parts: &[&str]) -> String {
    join_components(parts, esc_standard)
}

/// Components escaped with `esc` (a layout's escaper) and joined with `^`.
pub(super) fn join_components<S: AsRef<str>>(parts: &[S], esc: fn(&str) -> String) -> String {
    parts
        .iter()
        .map(|p| esc(p.as_ref()))
        .collect::<Vec<_>>()
        .join("^")
}

/// A segment from its fields (`fields[0]` is the segment ID), padded to `count` fields.
pub(super) fn segment(fields: &[String], count: usize) -> String {
    let mut all: Vec<&str> = fields.iter().map(String::as_str).collect();
    while all.len() < count {
        all.push("");
    }
    all.join("|")
}

/// MSH-10 is an ST of at most 20 characters in HL7 v2.3.1 to v2.6.
const MAX_CONTROL_ID_LEN: usize = 20;

/// Whether `version` is an HL7 v2 version ID (`2.3.1`, `2.5`): `2.` then dot-separated numbers.
fn is_hl7_version(version: &str) -> bool {
    version.strip_prefix("2.").is_some_and(|rest| {
        rest.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// MSH-9 of an ORU^R01 in `version`. The message structure (MSG.3, `ORU_R01`) is part of
/// MSH-9 from v2.4 on (v2.3.1 defines the component but real analyzers leave it out); the
/// OpenELIS layout writes `ORU^R01` whatever the version, as the reference does.
fn oru_message_type(version: &str, layout: Layout) -> &'static str {
    let from_2_4 = version
        .strip_prefix("2.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|minor| minor.parse::<u32>().ok())
        .is_some_and(|minor| minor >= 4);
    if from_2_4 && layout == Layout::Standard {
        "ORU^R01^ORU_R01"
    } else {
        "ORU^R01"
    }
}

/// Fields from literals.
fn f(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

impl Generator<'_> {
    /// The message of `segments`, in the generator's encoding (`?` for what it cannot write).
    /// In the standard layout a message holding non-ASCII text (a name, a unit such as
    /// `µmol/L`, a test code such as `β-hCG`) names its encoding in MSH-18 (`UNICODE UTF-8`,
    /// `8859/1`): with MSH-18 empty a receiver must read it as ASCII, and many read it as
    /// Latin-1. IHE ITI TF-2x C.2.2: value MSH-18 only when the data is not ASCII. The
    /// OpenELIS layout keeps the reference's MSH, which never values it.
    pub(super) fn hl7_message(&self, segments: Vec<String>) -> Hl7Message {
        let encoding = self.encoding;
        let mut segments: Vec<String> = segments
            .into_iter()
            .map(|s| encoding.substitute_owned(s))
            .collect();
        if self.layout == Layout::Standard
            && !segments.iter().all(|s| s.is_ascii())
            && let Some(charset) = encoding.msh18()
            && let Some(msh) = segments.first_mut()
        {
            let mut fields: Vec<&str> = msh.split('|').collect();
            if fields.len() < 18 {
                fields.resize(18, "");
            }
            fields[17] = charset;
            *msh = fields.join("|");
        }
        Hl7Message { segments, encoding }
    }

    /// MSH-3 (sending application), MSH-4 (facility) and MSH-12 (version: `protocol.version` when
    /// it is an HL7 version ID, else `2.5.1`) of generated messages.
    pub(super) fn hl7_ids(&self) -> (String, String, String) {
        let id = &self.template.identification;
        let app = id
            .hl7_sending_app
            .clone()
            .or_else(|| id.msh_sender.clone())
            .unwrap_or_else(|| "SIMULATOR".into());
        let facility = id
            .hl7_sending_facility
            .clone()
            .unwrap_or_else(|| "LAB".into());
        // hl7() works for any template, but an ASTM or file template's version (`LIS2-A2`,
        // `CSV-1.0`) is no HL7 version ID: MSH-12 then gets the default.
        let version = self
            .template
            .protocol
            .version
            .clone()
            .filter(|v| is_hl7_version(v))
            .unwrap_or_else(|| "2.5.1".into());
        (app, facility, version)
    }

    /// OBR-4's panel code and label from `testSample.type` (`CODE^Label`, default
    /// `IMMUNO^IMMUNOASSAY PANEL`), unescaped. A type without `^` has no label; the OpenELIS
    /// layout then repeats the code as the label (`^^^CHEM^CHEM`), as the reference's
    /// `generate_oru_r01` does.
    pub(super) fn hl7_panel(&self) -> (String, String) {
        let panel = self
            .template
            .test_sample
            .as_ref()
            .and_then(|s| s.kind.clone())
            .unwrap_or_else(|| "IMMUNO^IMMUNOASSAY PANEL".into());
        match panel.split_once('^') {
            Some((code, label)) => (code.to_owned(), label.to_owned()),
            None if self.layout == Layout::OpenElis => (panel.clone(), panel),
            None => (panel, String::new()),
        }
    }

    /// The PID segment of a patient ORU: PID-3 `{id}^^^HOSPITAL` (`patient_id`, else
    /// `testPatient.id`, else `PAT001`), PID-5 name, PID-7 birth date, PID-8 sex, each escaped
    /// (a `|` or `&` in a name must not shift or split fields).
    pub(super) fn hl7_pid(&self, patient_id: Option<&str>) -> String {
        let esc = self.hl7_escaper();
        let patient = self.template.test_patient.as_ref();
        let pick = |value: Option<&String>, default: &str| {
            value.map_or_else(|| default.to_owned(), Clone::clone)
        };
        let id = patient_id.map_or_else(
            || pick(patient.and_then(|p| p.id.as_ref()), "PAT001"),
            str::to_owned,
        );
        let name = pick(patient.and_then(|p| p.name.as_ref()), "RAKOTO^JAO");
        let dob = pick(patient.and_then(|p| p.dob.as_ref()), "19850412");
        let sex = pick(patient.and_then(|p| p.sex.as_ref()), "F");
        let name_parts: Vec<&str> = name.split('^').collect();
        segment(
            &f(&[
                "PID",
                "1",
                "",
                // An ID is one value in either layout: `^` or `&` in it must not split PID-3.
                &format!("{}^^^HOSPITAL", esc_standard(&id)),
                "",
                &comps(&name_parts),
                "",
                &esc(&dob),
                &esc(&sex),
            ]),
            21,
        )
    }

    pub(super) fn hl7_escaper(&self) -> fn(&str) -> String {
        if self.layout == Layout::OpenElis {
            esc_openelis
        } else {
            esc_standard
        }
    }

    /// The MSH of a result message (ORU^R01) with MSH-10 `control`, sent at `now`.
    pub(super) fn oru_msh(&self, control: &str, now: &str) -> String {
        let (_, _, version) = self.hl7_ids();
        self.hl7_msh(
            control,
            now,
            oru_message_type(&version, self.layout),
            &version,
        )
    }

    /// An MSH from the template's sender to OpenELIS: MSH-9 `message_type`, MSH-10 `control`,
    /// MSH-12 `version`, sent at `now`.
    pub(super) fn hl7_msh(
        &self,
        control: &str,
        now: &str,
        message_type: &str,
        version: &str,
    ) -> String {
        let (app, facility, _) = self.hl7_ids();
        let esc = self.hl7_escaper();
        segment(
            &f(&[
                "MSH",
                "^~\\&",
                &esc(&app),
                &esc(&facility),
                "OpenELIS",
                "LAB",
                now,
                "",
                message_type,
                control,
                "P",
                version,
            ]),
            19,
        )
    }

    /// MSH-10. The OpenELIS layout writes the reference's `{prefix}{YYYYMMDDHHMMSS}`, which
    /// repeats within a second. The standard layout must stay within MSH-10's 20 characters (ST
    /// in v2.3.1 to 2.6) and differ per message: `{prefix}{YYMMDDHHMMSS}` for people to read,
    /// then the minter's message number in base 36 up to 20 characters (5 digits after `SIM`,
    /// 6 after `QC`). Consecutive numbers never repeat within 36^5 (60 million) messages, so
    /// one process cannot send the same ID twice; random digits did, by the birthday
    /// paradox, about once an hour at 100 messages per second. A receiver that drops
    /// duplicate MSH-10s would have lost those results.
    pub(super) fn control_id(&mut self, prefix: &str) -> String {
        if self.layout == Layout::OpenElis {
            return format!("{prefix}{}", ts(self.now));
        }
        self.unique_control_id(prefix)
    }

    /// The standard layout's [`control_id`](Self::control_id), in either layout: for
    /// messages whose answers are matched by MSH-10 (queries), which must never repeat.
    pub(super) fn unique_control_id(&mut self, prefix: &str) -> String {
        const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let id = format!("{prefix}{}", self.now.format("%y%m%d%H%M%S"));
        let mut number = self.minter.next_message_number();
        let mut tail = vec![b'0'; MAX_CONTROL_ID_LEN.saturating_sub(id.len())];
        for digit in tail.iter_mut().rev() {
            *digit = DIGITS[(number % 36) as usize];
            number /= 36;
        }
        id + &String::from_utf8_lossy(&tail)
    }

    /// The patient ORU^R01: MSH, PID, ORC, OBR and one OBX per field.
    pub fn hl7(&mut self) -> Result<Hl7Message, GenerateError> {
        let template = self.template;
        let lane = self.lane()?;
        let accession = self.accession(lane)?;
        let now = ts(self.now);
        let esc = self.hl7_escaper();
        let control = self.control_id("SIM");
        let pid = self
            .patient_id
            .clone()
            .or_else(|| template.test_patient.as_ref().and_then(|p| p.id.clone()));
        let (panel_code, panel_label) = self.hl7_panel();
        let (panel_code, panel_label) = (panel_code.as_str(), panel_label.as_str());
        let openelis = self.layout == Layout::OpenElis;
        let mut segments = Vec::new();
        segments.push(self.oru_msh(&control, &now));
        segments.push(self.hl7_pid(pid.as_deref()));
        let acc = esc(&accession);
        segments.push(segment(&f(&["ORC", "RE", &acc, &acc]), 23));
        let panel_field = format!("^^^{}^{}", esc(panel_code), esc(panel_label));
        if openelis {
            let mut obr = f(&["OBR", "1", &acc, &acc, &panel_field, "", "", "", &now]);
            obr.resize(21, String::new());
            obr[20] = "F".into();
            segments.push(segment(&obr, 28));
        } else {
            let mut obr = f(&[
                "OBR",
                "1",
                &acc,
                &acc,
                &comps(&[panel_code, panel_label]),
                "",
                "",
                &now,
            ]);
            obr.resize(26, String::new());
            obr[22] = now.clone();
            obr[25] = "F".into();
            segments.push(segment(&obr, 26));
        }
        for (i, field) in self.fields().into_iter().enumerate() {
            let value = self.field_value(field, Path::Hl7);
            let kind = if field.kind == FieldType::Numeric {
                "NM"
            } else {
                "ST"
            };
            let seq = (i + 1).to_string();
            if openelis {
                let id = format!("^^^{}^{}", esc(&field.code), esc(&field.name));
                segments.push(segment(
                    &f(&[
                        "OBX",
                        &seq,
                        kind,
                        &id,
                        "",
                        &esc(&value.text),
                        &esc(field.unit_str()),
                        "",
                        "N",
                        "",
                        "",
                        "F",
                    ]),
                    17,
                ));
            } else {
                let flag = match (field.range(), value.number) {
                    (Some(r), Some(v)) => r.flag(v),
                    _ => "",
                };
                let id = comps(&[&field.code, &field.name, "L"]);
                let range = esc(field.normal_range.as_deref().unwrap_or(""));
                segments.push(segment(
                    &f(&[
                        "OBX",
                        &seq,
                        kind,
                        &id,
                        "",
                        &esc(&value.text),
                        &esc(field.unit_str()),
                        &range,
                        flag,
                        "",
                        "",
                        "F",
                        "",
                        "",
                        &now,
                    ]),
                    15,
                ));
            }
        }
        Ok(self.hl7_message(segments))
    }

    /// The QC ORU^R01: specimen `QC-{lot}-{level}` of the first control, OBR-25 `C`, one OBX per
    /// control with OBX-3 `code^lot^level` and OBX-11 `C`, in `qc_controls` order. With
    /// [`GenerateOptions::tests`](super::GenerateOptions::tests) only the controls of those
    /// tests are sent; a control naming no field, or no control for the tests asked for, is
    /// [`GenerateError::NoQc`], as for ASTM and file QC.
    pub fn hl7_qc(&mut self) -> Result<Hl7Message, GenerateError> {
        let template = self.template;
        let controls = self.qc_controls_asked()?;
        let first = controls[0].clone();
        let now = ts(self.now);
        let esc = self.hl7_escaper();
        let control = self.control_id("QC");
        let specimen = esc(&first.id().hl7_specimen_id());
        let openelis = self.layout == Layout::OpenElis;
        let mut segments = vec![self.oru_msh(&control, &now)];
        segments.push(segment(
            &f(&[
                "PID",
                "1",
                "",
                "QCCTRL001^^^QC",
                "",
                "QC^Control",
                "",
                "19000101",
                "U",
            ]),
            21,
        ));
        segments.push(segment(&f(&["ORC", "RE", &specimen, &specimen]), 23));
        let mut obr = f(&[
            "OBR",
            "1",
            &specimen,
            &specimen,
            if openelis {
                "^^^QC^Quality Control"
            } else {
                "QC^Quality Control"
            },
            "",
            "",
            "",
        ]);
        if openelis {
            obr.push(now.clone());
            obr.resize(29, String::new());
            obr[25] = "C".into();
            segments.push(segment(&obr, 29));
        } else {
            obr[7].clone_from(&now);
            obr.resize(26, String::new());
            obr[22].clone_from(&now);
            // Final, as any result. `C` (the reference's QC mark) means a correction in HL7
            // tables 0123 and 0085, replacing a final result; the specimen ID (`QC-…`) is what
            // tells QC apart.
            obr[25] = "F".into();
            segments.push(segment(&obr, 26));
        }
        for (i, c) in controls.iter().enumerate() {
            let value = self.qc_value_checked(c, Path::Hl7)?;
            let id = c.id();
            let seq = (i + 1).to_string();
            // OBX-6 is the control's `unit`; the reference leaves it empty without one, the
            // standard layout falls back to the field's unit.
            let unit = esc(c
                .unit
                .as_deref()
                .or_else(|| {
                    template
                        .field(&c.field_code)
                        .and_then(|f| f.unit.as_deref())
                        .filter(|_| !openelis)
                })
                .unwrap_or(""));
            if openelis {
                let obx3 = format!(
                    "^^^{}^{}^{}",
                    esc(&id.field_code),
                    esc(&id.lot),
                    esc(&id.level)
                );
                segments.push(segment(
                    &f(&[
                        "OBX",
                        &seq,
                        "NM",
                        &obx3,
                        "",
                        &value.text,
                        &unit,
                        "",
                        "N",
                        "",
                        "",
                        "C",
                    ]),
                    17,
                ));
            } else {
                let obx3 = comps(&[&id.field_code, &id.lot, &id.level]);
                segments.push(segment(
                    &f(&[
                        "OBX",
                        &seq,
                        "NM",
                        &obx3,
                        "",
                        &value.text,
                        &unit,
                        "",
                        "",
                        "",
                        "",
                        "F",
                        "",
                        "",
                        &now,
                    ]),
                    15,
                ));
            }
        }
        Ok(self.hl7_message(segments))
    }
}
