//! Results for an order a LIS sent: exactly the ordered tests, unknown codes reported as not done
//! (the reference mock's "order in, result out", `send_order_response` and the MLLP listener).

use astm_records::{Delimiters, FieldBuf, RecordBuf};

use super::astm::raw_record;
use super::hl7::{esc_standard, join_components, segment};
use super::values::Path;
use super::{AstmMessage, Generator, Hl7Message, Layout, ts};
use crate::GenerateError;
use crate::model::FieldType;

/// One ordered specimen: the LIS's specimen ID and the test codes asked for, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderedSample {
    /// The specimen ID as the LIS sent it (O.3 component 1, or OBR-3/ORC-3); echoed unchanged.
    pub sample_id: String,
    /// Test codes (R.3 / OBX-3 component 4), duplicates already removed by the caller or kept.
    pub codes: Vec<String>,
    /// The patient the order came under (the P record above its O record), echoed in the
    /// results' P record so the LIS can check them against its order; `None` (an order
    /// without a P record) reports the generator's patient, as
    /// [`Generator::astm_order_results`] describes.
    pub patient: Option<OrderedPatient>,
}

/// The patient named in an order (an ASTM P record, an HL7 PID segment), as unescaped text.
///
/// An analyzer echoes these in its results, the way the LIS sent them: an empty field stays
/// empty. The generator escapes every value again with the layout's rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderedPatient {
    /// Practice-assigned patient ID, the LIS's own (ASTM P.3; HL7 PID-3: the ID of its first
    /// identifier).
    pub practice_id: String,
    /// Laboratory-assigned patient ID (ASTM P.4; HL7 has no field for it, so it is not
    /// written there).
    pub laboratory_id: String,
    /// Name components, family name first (ASTM P.6, HL7 PID-5).
    pub name: Vec<String>,
    /// Birth date as sent (ASTM P.8, HL7 PID-7).
    pub birth_date: String,
    /// Sex as sent: `M`, `F`, `U`, ... (ASTM P.9, HL7 PID-8).
    pub sex: String,
}

/// The PID segment of an order's results in the standard layout: the order's patient, each
/// value escaped with `esc`, padded to the 21 fields of the patient ORU's PID.
fn ordered_pid(patient: &OrderedPatient, esc: fn(&str) -> String) -> String {
    let fields = [
        "PID".to_owned(),
        "1".to_owned(),
        String::new(),
        esc(&patient.practice_id),
        String::new(),
        join_components(&patient.name, esc),
        String::new(),
        esc(&patient.birth_date),
        esc(&patient.sex),
    ];
    segment(&fields, 21)
}

/// One order of an HL7 order message (an ORC/OBR group), as read from it: the components
/// of its placer and filler order numbers (ID, namespace, universal ID, its type; OBR-2/3,
/// else ORC-2/3) and the test codes it orders, in order. The values are unescaped text; the
/// generator escapes them again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderGroup {
    /// Placer order number components.
    pub placer: Vec<String>,
    /// Filler order number components.
    pub filler: Vec<String>,
    /// Test codes (OBR-4 component 4 or 1 of the order message; OBX-3 of the results).
    pub codes: Vec<String>,
    /// The components of the universal service ID the order asked for (its first OBR's
    /// OBR-4), echoed in the results' OBR-4 in [`Layout::Standard`], where a LIS matching
    /// results to orders compares it; empty: the template's panel.
    pub service: Vec<String>,
}

/// The reference's single order group: the first order's numbers, every order's codes once.
fn merge_orders(orders: &[OrderGroup]) -> OrderGroup {
    let mut merged = orders.first().cloned().unwrap_or_default();
    for order in orders.iter().skip(1) {
        for code in &order.codes {
            if !merged.codes.contains(code) {
                merged.codes.push(code.clone());
            }
        }
    }
    merged
}

/// Value text that marks a test the analyzer cannot perform (the reference's wording).
pub const NOT_PERFORMED: &str = "TEST NOT PERFORMED";

fn encode(record: &RecordBuf) -> Result<String, GenerateError> {
    let bytes =
        record
            .to_bytes(&Delimiters::STANDARD)
            .map_err(|e| GenerateError::InvalidOption {
                option: "order",
                reason: e.to_string(),
            })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl Generator<'_> {
    /// An ASTM host query (LIS2-A2 request information record), the message an instrument in
    /// query mode sends after reading barcodes: H, one Q record per specimen asking for all its
    /// tests' orders (`Q|n|^SPECIMEN||^^^ALL||||||||O`, Q.13 `O`: orders and demographics),
    /// then L. The LIS answers with an order message (O.26 `Q`), which
    /// [`astm_order_results`](Self::astm_order_results) then reports on.
    ///
    /// ```
    /// use lis_templates::{AccessionMinter, GenerateOptions, Generator, TemplateSet};
    /// let templates = TemplateSet::embedded()?;
    /// let minter = AccessionMinter::new();
    /// let options = GenerateOptions::default();
    /// let mut generator = Generator::new(templates.get("stago_start4")?, &minter, &options)?;
    /// let query = generator.astm_host_query(&["SPEC-1"])?;
    /// assert_eq!(query.records[1], "Q|1|^SPEC-1||^^^ALL||||||||O");
    /// assert_eq!(query.records[2], "L|1|N");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn astm_host_query(&mut self, specimens: &[&str]) -> Result<AstmMessage, GenerateError> {
        self.host_query(specimens, "O")
    }

    /// The query that withdraws an [`astm_host_query`](Self::astm_host_query) the LIS has not
    /// answered in time: the same Q records with Q.13 `A` (abort the last request), as cobas
    /// analyzers send after 15 s.
    pub fn astm_host_query_abort(
        &mut self,
        specimens: &[&str],
    ) -> Result<AstmMessage, GenerateError> {
        self.host_query(specimens, "A")
    }

    /// An HL7 host query: IHE LAW's query for the work of one specimen (LAB-27, "WOS"), the
    /// message an analyzer in query mode sends after reading a barcode. `QBP^Q11^QBP_Q11` in
    /// HL7 v2.5.1 (what LAW is written for, whatever the template's version), MSH-10 unique
    /// in either layout (the answer is matched by it), `QPD|WOS^Work Order Step^IHE_LABTF|TAG|SPECIMEN`
    /// (QPD-2 the query tag, here MSH-10 again; QPD-3 the specimen's container ID, escaped)
    /// and `RCP|I` (answer at once). The LIS answers `RSP^K11`, then sends the specimen's work
    /// as `OML^O33` (ORC-1 `DC` when it has none), which
    /// [`hl7_order_results_for`](Self::hl7_order_results_for) reports on once read with
    /// [`Hl7Orders`](crate::Hl7Orders).
    ///
    /// ```
    /// use lis_templates::{AccessionMinter, GenerateOptions, Generator, TemplateSet};
    /// let templates = TemplateSet::embedded()?;
    /// let minter = AccessionMinter::new();
    /// let options = GenerateOptions::default();
    /// let mut generator = Generator::new(templates.get("mindray_bs200")?, &minter, &options)?;
    /// let query = generator.hl7_host_query("SPEC|1");
    /// let msh: Vec<&str> = query.segments[0].split('|').collect();
    /// assert_eq!((msh[8], msh[11]), ("QBP^Q11^QBP_Q11", "2.5.1"));
    /// let tag = msh[9];
    /// assert_eq!(
    ///     query.segments[1],
    ///     format!("QPD|WOS^Work Order Step^IHE_LABTF|{tag}|SPEC\\F\\1")
    /// );
    /// assert_eq!(query.segments[2], "RCP|I");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hl7_host_query(&mut self, specimen: &str) -> Hl7Message {
        let now = ts(self.now);
        let control = self.unique_control_id("QRY");
        let msh = self.hl7_msh(&control, &now, "QBP^Q11^QBP_Q11", "2.5.1");
        let qpd = format!(
            "QPD|WOS^Work Order Step^IHE_LABTF|{control}|{}",
            esc_standard(specimen)
        );
        self.hl7_message(vec![msh, qpd, "RCP|I".to_owned()])
    }

    fn host_query(
        &mut self,
        specimens: &[&str],
        status: &str,
    ) -> Result<AstmMessage, GenerateError> {
        let now = ts(self.now);
        let header = if self.layout == Layout::OpenElis {
            let sender = self.sender();
            raw_record(&[
                "H", "", "", "", &sender, "", "", "", "", "", "", "LIS2-A2", &now,
            ])?
        } else {
            let mut h = self.standard_header(&now);
            h.set(3, self.message_id().as_str());
            encode(&h)?
        };
        let mut records = vec![header];
        for (i, specimen) in specimens.iter().enumerate() {
            let mut q = RecordBuf::new(b'Q');
            q.set_sequence(u32::try_from(i + 1).unwrap_or(u32::MAX))
                .set(3, FieldBuf::components(["", specimen]))
                .set(5, FieldBuf::test_codes(["ALL"]))
                .set(13, status);
            records.push(encode(&q)?);
        }
        records.push(raw_record(&["L", "1", "N"])?);
        Ok(AstmMessage::new(records, self.encoding))
    }

    /// An ASTM result message for `orders`: per specimen a P and an O record and one R record per
    /// ordered code, in the order asked. A code the template does not know gets an R record with
    /// value `TEST NOT PERFORMED` and result status `X` (R.9).
    ///
    /// In [`Layout::Standard`] each P record echoes the order's patient
    /// ([`OrderedSample::patient`]: P.3, P.4, P.6, P.8 and P.9 as the LIS sent them). An order
    /// without one, and every order in [`Layout::OpenElis`] (the reference ignores the
    /// order's patient), gets the generator's patient: ID
    /// [`GenerateOptions::patient_id`](super::GenerateOptions::patient_id) when set, else
    /// `testPatient.id`, else `PAT-ORDER`, and the name `testPatient.name`, else `DOE^JOHN`.
    ///
    /// [`Layout::OpenElis`] reproduces the reference's bytes (`O|1|{id}|||^^^|R`, no time stamps);
    /// [`Layout::Standard`] puts the ordered tests in O.5, the report type `F` in O.26, the
    /// reference range and flag in R.6/R.7 and the completion time in R.13, and numbers records
    /// as LIS2-A2 does: P per message, O per patient and R per order, each from 1.
    ///
    /// ```
    /// use lis_templates::{AccessionMinter, GenerateOptions, Generator, Layout, OrderedSample, TemplateSet};
    /// let templates = TemplateSet::embedded()?;
    /// let minter = AccessionMinter::new();
    /// let options = GenerateOptions { seed: Some(1), layout: Layout::OpenElis, ..Default::default() };
    /// let mut generator = Generator::new(templates.get("stago_start4")?, &minter, &options)?;
    /// let order = OrderedSample {
    ///     sample_id: "DEV01260000000000123".into(),
    ///     codes: vec!["PT".into(), "XYZ".into()],
    ///     patient: None,
    /// };
    /// let message = generator.astm_order_results(&[order])?;
    /// assert_eq!(message.records[2], "O|1|DEV01260000000000123|||^^^|R");
    /// assert_eq!(message.records[3], "R|1|^^^PT|12.5|sec||||F");
    /// assert_eq!(message.records[4], "R|2|^^^XYZ|TEST NOT PERFORMED|||||X");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn astm_order_results(
        &mut self,
        orders: &[OrderedSample],
    ) -> Result<AstmMessage, GenerateError> {
        let template = self.template;
        let openelis = self.layout == Layout::OpenElis;
        let now = ts(self.now);
        let sender = self.sender();
        let patient = template.test_patient.as_ref();
        let patient_id = self
            .patient_id
            .clone()
            .or_else(|| patient.and_then(|p| p.id.clone()))
            .unwrap_or_else(|| "PAT-ORDER".into());
        let patient_name = patient
            .and_then(|p| p.name.clone())
            .unwrap_or_else(|| "DOE^JOHN".into());
        let mut records = Vec::new();
        if openelis {
            records.push(raw_record(&[
                "H", "", "", "", &sender, "", "", "", "", "", "", "LIS2-A2",
            ])?);
        } else {
            // The header the template's patient messages carry: its receiver, processing
            // id and version (`E1394-97` templates say so here too).
            records.push(encode(&self.standard_header(&now))?);
        }
        let mut seq = 0u32;
        for (i, order) in orders.iter().enumerate() {
            let n = (i + 1).to_string();
            if openelis {
                // The reference's running numbers and its sparse fields, but the values
                // escaped: an ID holding `^` or `&` must not split into components.
                let mut p = RecordBuf::new(b'P');
                p.set(2, n.as_str()).set(3, patient_id.as_str()).set(
                    5,
                    FieldBuf::components(patient_name.split('^').map(str::to_owned)),
                );
                records.push(encode(&p)?);
                let mut o = RecordBuf::new(b'O');
                o.set(2, n.as_str())
                    .set(3, order.sample_id.as_str())
                    .set(6, FieldBuf::raw("^^^"))
                    .set(7, "R");
                records.push(encode(&o)?);
            } else {
                let mut p = RecordBuf::new(b'P');
                p.set_sequence(u32::try_from(i + 1).unwrap_or(u32::MAX));
                match &order.patient {
                    Some(ordered) => {
                        // Only what the order held, so no run of empty fields trails the record.
                        for (number, text) in [
                            (3, &ordered.practice_id),
                            (4, &ordered.laboratory_id),
                            (8, &ordered.birth_date),
                            (9, &ordered.sex),
                        ] {
                            if !text.is_empty() {
                                p.set(number, text.as_str());
                            }
                        }
                        if ordered.name.iter().any(|c| !c.is_empty()) {
                            p.set(6, FieldBuf::components(ordered.name.iter().cloned()));
                        }
                    }
                    None => {
                        p.set(4, patient_id.as_str()).set(
                            6,
                            FieldBuf::components(patient_name.split('^').map(str::to_owned)),
                        );
                    }
                }
                records.push(encode(&p)?);
                // LIS2-A2: a sequence number restarts at 1 under each new parent, so each
                // patient's (only) order is O|1 and its results start again at R|1. The
                // OpenELIS layout keeps the reference's running numbers.
                seq = 0;
                let mut o = RecordBuf::new(b'O');
                o.set_sequence(1)
                    .set(3, order.sample_id.as_str())
                    .set(5, FieldBuf::test_codes(order.codes.clone()))
                    .set(6, "R")
                    .set(26, "F");
                records.push(encode(&o)?);
            }
            for code in &order.codes {
                seq += 1;
                let s = seq.to_string();
                let Some(field) = template.field(code).cloned() else {
                    if openelis {
                        records.push(encode(
                            RecordBuf::new(b'R')
                                .set(2, s.as_str())
                                .set(3, FieldBuf::test_codes([code.clone()]))
                                .set(4, NOT_PERFORMED)
                                .set(9, "X"),
                        )?);
                    } else {
                        let mut r = RecordBuf::new(b'R');
                        r.set_sequence(seq)
                            .set(3, FieldBuf::test_codes([code.clone()]))
                            .set(4, NOT_PERFORMED)
                            .set(9, "X")
                            .set(13, now.as_str());
                        records.push(encode(&r)?);
                    }
                    continue;
                };
                let value = self.field_value(&field, Path::Astm);
                let numeric = field.kind == FieldType::Numeric;
                let unit = if numeric { field.unit_str() } else { "" };
                if openelis {
                    records.push(encode(
                        RecordBuf::new(b'R')
                            .set(2, s.as_str())
                            .set(3, FieldBuf::test_codes([code.clone()]))
                            .set(4, value.text.as_str())
                            // Units as the reference writes them: `10^3/uL`, unescaped.
                            .set(5, FieldBuf::raw(unit))
                            .set(9, "F"),
                    )?);
                } else {
                    let range = field.normal_range.clone().unwrap_or_default();
                    let flag = match (value.number, field.range()) {
                        (Some(v), Some(r)) if numeric => r.flag(v),
                        _ => "",
                    };
                    let mut r = RecordBuf::new(b'R');
                    r.set_sequence(seq)
                        .set(3, FieldBuf::test_codes([code.clone()]))
                        .set(4, value.text.as_str())
                        .set(5, unit)
                        .set(6, range.as_str())
                        .set(7, flag)
                        .set(9, "F")
                        .set(13, now.as_str());
                    records.push(encode(&r)?);
                }
            }
        }
        records.push(raw_record(&["L", "1", "N"])?);
        Ok(AstmMessage::new(records, self.encoding))
    }

    /// An HL7 ORU^R01 for an ORM: ORC/OBR echo `placer` and `filler`, one OBX per ordered code
    /// in the order asked. `placer` and `filler` are the components of the order's entity
    /// identifiers (ID, namespace, universal ID, its type), as read from the ORM; each is
    /// escaped (in both layouts, so the LIS reads back what it sent), and trailing empty
    /// ones are left out; an unknown code gets `TEST NOT PERFORMED` with result status `X`
    /// (OBX-11), as the reference's MLLP listener does.
    ///
    /// [`Layout::OpenElis`] reproduces the reference's bytes (OBR-4 `^^^PANEL^Label`, OBX-3
    /// `^^^CODE^Name`, OBX-8 always `N`); [`Layout::Standard`] writes the codes as its patient
    /// ORU does (OBR-4 `PANEL^Label`, OBX-3 `CODE^Name^L`: the identifier in CE.1), the
    /// reference range in OBX-7, the flag it gives in OBX-8 and the observation time in OBX-14.
    ///
    /// ```
    /// use lis_templates::{AccessionMinter, GenerateOptions, Generator, TemplateSet};
    /// let templates = TemplateSet::embedded()?;
    /// let minter = AccessionMinter::new();
    /// let options = GenerateOptions { seed: Some(1), ..Default::default() };
    /// let mut generator = Generator::new(templates.get("mindray_bs360e")?, &minter, &options)?;
    /// let oru = generator.hl7_order_results(&["P1", "LIS"], &["F1"], &["ALT".into(), "NOPE".into()])?;
    /// assert!(oru.segments[2].starts_with("ORC|RE|P1^LIS|F1|"));
    /// assert!(oru.segments[4].starts_with("OBX|1|NM|ALT^"));
    /// assert!(oru.segments[5].starts_with("OBX|2|ST|NOPE^NOPE^L||TEST NOT PERFORMED||||||X|"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The PID segment is the generator's patient; [`Generator::hl7_order_results_for`]
    /// echoes the order's instead, and reports several orders each in its own ORC/OBR group.
    pub fn hl7_order_results<S: AsRef<str>>(
        &mut self,
        placer: &[S],
        filler: &[S],
        codes: &[String],
    ) -> Result<Hl7Message, GenerateError> {
        let order = OrderGroup {
            placer: placer.iter().map(|c| c.as_ref().to_owned()).collect(),
            filler: filler.iter().map(|c| c.as_ref().to_owned()).collect(),
            codes: codes.to_vec(),
            service: Vec::new(),
        };
        self.order_oru(None, std::slice::from_ref(&order))
    }

    /// [`Generator::hl7_order_results`] for the orders of an ORM (or OML) and the patient it
    /// named. In [`Layout::Standard`] each order gets its own ORC/OBR group (OBR-1 counting
    /// from 1, OBX-1 from 1 under each OBR, OBR-4 the order's service ID when it has one),
    /// so the LIS files every result under the order that asked for it, and the PID segment echoes `patient` when given (PID-3 its practice
    /// ID, PID-5 the name, PID-7 the birth date, PID-8 the sex, each escaped).
    /// [`Layout::OpenElis`] writes what the reference does whatever was ordered: one group
    /// with the first order's numbers and every order's codes, and the generator's patient.
    ///
    /// ```
    /// use lis_templates::{
    ///     AccessionMinter, GenerateOptions, Generator, OrderGroup, OrderedPatient, TemplateSet,
    /// };
    /// let templates = TemplateSet::embedded()?;
    /// let minter = AccessionMinter::new();
    /// let options = GenerateOptions { seed: Some(1), ..Default::default() };
    /// let mut generator = Generator::new(templates.get("mindray_bs360e")?, &minter, &options)?;
    /// let patient = OrderedPatient {
    ///     practice_id: "MRN-77".into(),
    ///     name: vec!["SMITH".into(), "ANNA".into()],
    ///     birth_date: "19800101".into(),
    ///     sex: "F".into(),
    ///     ..Default::default()
    /// };
    /// let orders = [
    ///     OrderGroup {
    ///         placer: vec!["P1".into()],
    ///         codes: vec!["ALT".into()],
    ///         service: vec!["ALT".into(), "Alanine aminotransferase".into(), "L".into()],
    ///         ..Default::default()
    ///     },
    ///     OrderGroup { placer: vec!["P2".into()], codes: vec!["AST".into()], ..Default::default() },
    /// ];
    /// let oru = generator.hl7_order_results_for(Some(&patient), &orders)?;
    /// assert!(oru.segments[1].starts_with("PID|1||MRN-77||SMITH^ANNA||19800101|F|"));
    /// assert!(oru.segments[2].starts_with("ORC|RE|P1|"));
    /// assert!(oru.segments[3].starts_with("OBR|1|P1||ALT^Alanine aminotransferase^L|"));
    /// assert!(oru.segments[4].starts_with("OBX|1|NM|ALT^"));
    /// assert!(oru.segments[5].starts_with("ORC|RE|P2|"));
    /// assert!(oru.segments[6].starts_with("OBR|2|P2||CHEM^CHEMISTRY PANEL|"));
    /// assert!(oru.segments[7].starts_with("OBX|1|NM|AST^"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hl7_order_results_for(
        &mut self,
        patient: Option<&OrderedPatient>,
        orders: &[OrderGroup],
    ) -> Result<Hl7Message, GenerateError> {
        self.order_oru(patient, orders)
    }

    fn order_oru(
        &mut self,
        patient: Option<&OrderedPatient>,
        orders: &[OrderGroup],
    ) -> Result<Hl7Message, GenerateError> {
        let template = self.template;
        let openelis = self.layout == Layout::OpenElis;
        let merged;
        let orders = if openelis && orders.len() > 1 {
            merged = merge_orders(orders);
            std::slice::from_ref(&merged)
        } else {
            orders
        };
        let now = ts(self.now);
        let control = self.control_id("SIM");
        // Field counts (segment ID included) of the reference's generate_oru_r01, which its MLLP
        // listener uses for order results: PID 21 (shared with `hl7()`), ORC 23, OBR 28, OBX 17.
        // The standard layout keeps its own (trailing empty fields carry nothing).
        let (orc_count, obx_count) = if openelis { (23, 17) } else { (22, 16) };
        let pad = |mut fields: Vec<String>, count: usize| {
            fields.resize(count.max(fields.len()), String::new());
            fields.join("|")
        };
        let s = |v: &str| v.to_owned();
        // User data is escaped as in the patient ORU (`hl7()`), per layout.
        let hl7_esc = self.hl7_escaper();
        // What the order message held (order numbers, service ID) is escaped fully in both
        // layouts: the reference echoes the ORM's raw field, and only full escaping gives that
        // back for a component read from `\S\` or `\T\` (the OpenELIS escaper would write a
        // bare `^` and split it).
        let echo = |components: &[String]| {
            let used = components
                .iter()
                .rposition(|c| !c.is_empty())
                .map_or(0, |last| last + 1);
            join_components(&components[..used], esc_standard)
        };
        let (panel_code, panel_label) = self.hl7_panel();
        let mut segments = vec![
            self.oru_msh(&control, &now),
            match patient {
                Some(ordered) if !openelis => ordered_pid(ordered, hl7_esc),
                _ => self.hl7_pid(self.patient_id.as_deref()),
            },
        ];
        // OBR-4 and OBX-3 are CE: the OpenELIS layout puts the code in component 4 as the
        // reference does; the standard layout in component 1 (identifier), as its patient ORU
        // does, where a LIS reading CE.1 finds it.
        let panel = if openelis {
            format!("^^^{}^{}", hl7_esc(&panel_code), hl7_esc(&panel_label))
        } else {
            join_components(&[panel_code.as_str(), panel_label.as_str()], hl7_esc)
        };
        let observation = |code: &str, name: &str| {
            if openelis {
                format!("^^^{}^{}", hl7_esc(code), hl7_esc(name))
            } else {
                join_components(&[code, name, "L"], hl7_esc)
            }
        };
        for (group, order) in orders.iter().enumerate() {
            let (placer, filler) = (echo(&order.placer), echo(&order.filler));
            segments.push(pad(
                vec![s("ORC"), s("RE"), placer.clone(), filler.clone()],
                orc_count,
            ));
            let service = if openelis || order.service.iter().all(String::is_empty) {
                panel.clone()
            } else {
                echo(&order.service)
            };
            let mut obr = vec![s("OBR"), (group + 1).to_string(), placer, filler, service];
            if openelis {
                // The reference writes the time in OBR-8 (observation end), not OBR-7.
                obr.resize(28, String::new());
                obr[8].clone_from(&now);
                obr[20] = s("F");
            } else {
                obr.resize(27, String::new());
                obr[7].clone_from(&now);
                obr[22].clone_from(&now);
                obr[25] = s("F");
            }
            segments.push(obr.join("|"));
            for (i, code) in order.codes.iter().enumerate() {
                let n = (i + 1).to_string();
                let obx = match template.field(code).cloned() {
                    Some(field) => {
                        let value = self.field_value(&field, Path::Hl7);
                        let kind = if field.kind == FieldType::Numeric {
                            "NM"
                        } else {
                            "ST"
                        };
                        // The reference always writes OBX-8 `N` and no range; the standard layout
                        // reports the range (OBX-7), the flag it gives (OBX-8) and the observation
                        // time (OBX-14), as the patient ORU does.
                        let (range, flag) = if openelis {
                            (String::new(), "N")
                        } else {
                            let flag = match (field.range(), value.number) {
                                (Some(r), Some(v)) => r.flag(v),
                                _ => "",
                            };
                            (hl7_esc(field.normal_range.as_deref().unwrap_or("")), flag)
                        };
                        let mut obx = vec![
                            s("OBX"),
                            n,
                            s(kind),
                            observation(code, &field.name),
                            String::new(),
                            hl7_esc(&value.text),
                            hl7_esc(field.unit_str()),
                            range,
                            s(flag),
                            String::new(),
                            String::new(),
                            s("F"),
                        ];
                        if !openelis {
                            obx.extend([String::new(), String::new(), now.clone()]);
                        }
                        obx
                    }
                    None => vec![
                        s("OBX"),
                        n,
                        s("ST"),
                        observation(code, code),
                        String::new(),
                        s(NOT_PERFORMED),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        s("X"),
                    ],
                };
                segments.push(pad(obx, obx_count));
            }
        }
        Ok(self.hl7_message(segments))
    }
}
