//! Reading what a LIS ordered, for the results to answer: the patient of an ASTM P record or
//! an HL7 PID segment, and the orders of an HL7 ORM or OML.
//!
//! Text is read as UTF-8 when it is valid UTF-8, else as Latin-1 (never lossy): the results
//! are written in UTF-8, so a LIS sending UTF-8 gets its bytes back and one sending Latin-1
//! its text.

use std::collections::{HashMap, HashSet};

use astm_records::Charset;

use super::order::{OrderGroup, OrderedPatient};
use crate::model::Template;

/// ORC-1 order control codes (HL7 table 0119) that withdraw an order rather than place it:
/// cancel, discontinue or hold requests, and the orders cancelled, discontinued or held.
pub const WITHDRAWING_ORDER_CONTROLS: [&str; 6] = ["CA", "DC", "HD", "OC", "OD", "OH"];

/// The unescaped text of an HL7 value.
fn hl7_text(value: &mllp_hl7::Value<'_>) -> String {
    Charset::Auto.decode(&value.decoded()).into_owned()
}

impl OrderedPatient {
    /// The patient of an ASTM P record: P.3 and P.4 (component 1), the P.6 components, P.8
    /// and P.9.
    ///
    /// ```
    /// use astm_records::{Delimiters, Patient, Record};
    /// use lis_templates::OrderedPatient;
    /// let record = Record::parse(b"P|1|MRN-1|LAB-1||DOE^JANE||19700101|F", &Delimiters::STANDARD)?;
    /// let patient = OrderedPatient::from_astm(&Patient::new(record).unwrap());
    /// assert_eq!(patient.practice_id, "MRN-1");
    /// assert_eq!(patient.name, ["DOE", "JANE"]);
    /// # Ok::<(), astm_records::RecordError>(())
    /// ```
    #[must_use]
    pub fn from_astm(p: &astm_records::Patient<'_>) -> Self {
        let first =
            |field: astm_records::Field<'_>| field.component(1).text_as(Charset::Auto).into_owned();
        Self {
            practice_id: first(p.practice_patient_id()),
            laboratory_id: first(p.laboratory_patient_id()),
            name: p
                .name()
                .components()
                .map(|c| c.text_as(Charset::Auto).into_owned())
                .collect(),
            birth_date: first(p.birthdate()),
            sex: first(p.sex()),
        }
    }

    /// The patient of an HL7 message's PID segment: PID-3's first ID, the PID-5 components,
    /// PID-7 and PID-8; `None` without a PID segment.
    #[must_use]
    pub fn from_hl7(message: &mllp_hl7::Message<'_>) -> Option<Self> {
        let pid = message.segment(b"PID")?;
        let first = |n: usize| {
            pid.field(n)
                .and_then(|f| f.component(1))
                .map(|v| hl7_text(&v))
                .unwrap_or_default()
        };
        Some(Self {
            practice_id: first(3),
            laboratory_id: String::new(),
            name: pid
                .field(5)
                .map(|f| f.components().map(|v| hl7_text(&v)).collect())
                .unwrap_or_default(),
            birth_date: first(7),
            sex: first(8),
        })
    }
}

/// What an HL7 ORM or OML orders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hl7Orders {
    /// Each order placed, in the message's order: its placer and filler numbers (OBR-2/3,
    /// else its ORC-2/3), its codes (OBR-4 component 4, else 1; see
    /// [`read_for`](Self::read_for)) and its service ID (OBR-4, of its first OBR). OBR
    /// segments with the same numbers are one order; an OBR without a code orders nothing, and
    /// a message without any order number orders nothing (the LIS could not match results to
    /// it).
    pub orders: Vec<OrderGroup>,
    /// The ORC-1 of each order group that withdraws its order
    /// ([`WITHDRAWING_ORDER_CONTROLS`]): its OBR segments order nothing.
    pub withdrawn: Vec<String>,
    /// The specimens the message names, each as the IDs it goes by: an OML^O33's SPM-2
    /// placer and filler IDs (one specimen, HL7 v2.5.1 §7.4.3.2) and the SAC-3 container
    /// IDs of the containers after it (a SAC before any SPM is a specimen of its own);
    /// unescaped, each once, empty ones left out. An analyzer checks them against the
    /// specimen it asked about.
    pub specimens: Vec<Vec<String>>,
}

impl Hl7Orders {
    /// Reads the ORC/OBR groups of `message`.
    ///
    /// ```
    /// use lis_templates::Hl7Orders;
    /// let orm = mllp_hl7::Message::parse(
    ///     b"MSH|^~\\&|LIS||LAB||20260101||ORM^O01|1|P|2.3.1\rPID|1||P1\r\
    ///       ORC|CA|PL-1\rOBR|1|PL-1||^^^RBC\rORC|NW|PL-2\rOBR|1|PL-2||^^^WBC",
    /// )?;
    /// let read = Hl7Orders::read(&orm);
    /// assert_eq!(read.withdrawn, ["CA"]);
    /// assert_eq!(read.orders.len(), 1);
    /// assert_eq!(read.orders[0].placer, ["PL-2"]);
    /// assert_eq!(read.orders[0].codes, ["WBC"]);
    /// assert_eq!(read.orders[0].service, ["", "", "", "WBC"]);
    ///
    /// let oml = mllp_hl7::Message::parse(
    ///     b"MSH|^~\\&|LIS||LAB||20260101||OML^O33^OML_O33|2|P|2.5.1\rSPM|1|S-1&LIS^F-1\r\
    ///       SAC|||S-1\rORC|NW|PL-3\rOBR|1|PL-3||GLU",
    /// )?;
    /// assert_eq!(Hl7Orders::read(&oml).specimens, [["S-1", "F-1"]]);
    /// # Ok::<(), mllp_hl7::ParseError>(())
    /// ```
    #[must_use]
    pub fn read(message: &mllp_hl7::Message<'_>) -> Self {
        Self::read_with(message, None)
    }

    /// Reads the ORC/OBR groups of `message` for an analyzer of `template`: an OBR-4 code is
    /// whichever of component 4 (the OpenELIS form `^^^CODE^NAME`) and component 1 (a CE's
    /// identifier, `GLU^Glucose^L^2345-7^Glucose^LN`) names one of its fields, and as
    /// [`read`](Self::read) when neither does. `read` takes component 4 first whatever it
    /// holds, so a standard CE carrying a LOINC code as its alternate identifier was reported
    /// as a test not performed.
    ///
    /// ```
    /// use lis_templates::{Hl7Orders, TemplateSet};
    /// let templates = TemplateSet::embedded()?;
    /// let orm = mllp_hl7::Message::parse(
    ///     b"MSH|^~\\&|LIS||LAB||20260101||ORM^O01|1|P|2.3.1\rORC|NW|PL-1\r\
    ///       OBR|1|PL-1||GLU^Glucose^L^2345-7^Glucose^LN",
    /// )?;
    /// let read = Hl7Orders::read_for(&orm, templates.get("mindray_bs200")?);
    /// assert_eq!(read.orders[0].codes, ["GLU"]);
    /// assert_eq!(Hl7Orders::read(&orm).orders[0].codes, ["2345-7"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn read_for(message: &mllp_hl7::Message<'_>, template: &Template) -> Self {
        Self::read_with(message, Some(template))
    }

    fn read_with(message: &mllp_hl7::Message<'_>, template: Option<&Template>) -> Self {
        let mut read = Self::default();
        // Indexes into `read`: an ORM may carry tens of thousands of OBRs, and a search per
        // segment made reading it quadratic.
        // (opened by a SPM, its IDs), in the message's order.
        let mut specimens: Vec<(bool, Vec<String>)> = Vec::new();
        let mut groups: HashMap<(Vec<String>, Vec<String>), usize> = HashMap::new();
        let mut codes = HashSet::new();
        let mut group: Option<(mllp_hl7::Segment<'_>, bool)> = None;
        for segment in message.segments() {
            let ids = |field: mllp_hl7::Value<'_>, components: &[usize]| -> Vec<String> {
                components
                    .iter()
                    .filter_map(|&c| field.component(c))
                    .filter_map(|v| v.subcomponent(1))
                    .map(|v| hl7_text(&v))
                    .filter(|id| !id.is_empty())
                    .collect()
            };
            match segment.id() {
                // A specimen: its placer and filler IDs; the containers after it add theirs.
                b"SPM" => specimens.push((true, ids(segment.field_or_empty(2), &[1, 2]))),
                b"SAC" => {
                    let container = ids(segment.field_or_empty(3), &[1]);
                    match specimens.last_mut() {
                        Some((true, of_specimen)) => of_specimen.extend(container),
                        _ => specimens.push((false, container)),
                    }
                }
                _ => {}
            }
            match segment.id() {
                b"ORC" => {
                    let control = segment
                        .field(1)
                        .and_then(|f| f.component(1))
                        .map(|v| hl7_text(&v).to_ascii_uppercase())
                        .unwrap_or_default();
                    let withdraws = WITHDRAWING_ORDER_CONTROLS.contains(&control.as_str());
                    if withdraws {
                        read.withdrawn.push(control);
                    }
                    group = Some((segment, withdraws));
                }
                b"OBR" => {
                    let orc = match group {
                        Some((_, true)) => continue,
                        Some((orc, false)) => Some(orc),
                        None => None,
                    };
                    let number = |n: usize| {
                        entity_id(&segment, n)
                            .or_else(|| orc.and_then(|o| entity_id(&o, n)))
                            .unwrap_or_default()
                    };
                    let (placer, filler) = (number(2), number(3));
                    let id = segment.field_or_empty(4);
                    let service: Vec<String> = id.components().map(|v| hl7_text(&v)).collect();
                    let candidates = [4, 1].into_iter().filter_map(|c| service.get(c - 1));
                    let known = template
                        .and_then(|t| candidates.clone().find(|code| t.field(code).is_some()));
                    let code = known
                        .or_else(|| candidates.clone().find(|c| !c.is_empty()))
                        .cloned();
                    let Some(code) = code else { continue };
                    let key = (placer, filler);
                    let at = match groups.get(&key) {
                        Some(&at) => at,
                        None => {
                            let at = read.orders.len();
                            groups.insert(key.clone(), at);
                            let (placer, filler) = key;
                            read.orders.push(OrderGroup {
                                placer,
                                filler,
                                codes: Vec::new(),
                                service,
                            });
                            at
                        }
                    };
                    if codes.insert((at, code.clone())) {
                        read.orders[at].codes.push(code);
                    }
                }
                _ => {}
            }
        }
        // The reference refuses a message without a single order number too.
        if read
            .orders
            .iter()
            .all(|o| o.placer.is_empty() && o.filler.is_empty())
        {
            read.orders.clear();
        }
        // Each specimen once, each of its IDs once (sets: a message may name thousands).
        let mut seen = HashSet::new();
        for (_, ids) in specimens {
            let mut its_ids = HashSet::new();
            let unique: Vec<String> = ids
                .into_iter()
                .filter(|id| its_ids.insert(id.clone()))
                .collect();
            if !unique.is_empty() && seen.insert(unique.clone()) {
                read.specimens.push(unique);
            }
        }
        read
    }
}

/// The components of an EI field (placer or filler order number: ID, namespace, universal ID,
/// its type) of `segment`, read with the message's own delimiters and unescaped (the results
/// escape them again); `None` when the field is empty, so ORC can stand in for OBR.
fn entity_id(segment: &mllp_hl7::Segment<'_>, n: usize) -> Option<Vec<String>> {
    let components: Vec<String> = segment
        .field(n)?
        .components()
        .map(|v| hl7_text(&v))
        .collect();
    components
        .iter()
        .any(|c| !c.is_empty())
        .then_some(components)
}
