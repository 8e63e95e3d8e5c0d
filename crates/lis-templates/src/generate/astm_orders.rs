//! Reading what an ASTM transfer from a LIS asks of an analyzer: orders (O records), host
//! queries (Q records) and withdrawals, merged per specimen. The ASTM counterpart of
//! [`Hl7Orders`](super::Hl7Orders).

use std::collections::{HashMap, HashSet};

use astm_records::{Charset, Message, Patient, RecordType, ReportType, TypedRecord};

use super::order::{OrderedPatient, OrderedSample};
use crate::error::OrderReadError;

/// Samples gathered from orders, one per sample ID in order of first appearance, each with
/// its test codes once.
///
/// Indexed: a LIS may send tens of thousands of O or Q records in one transfer, and a
/// search per record makes reading it quadratic.
///
/// ```
/// use lis_templates::OrderedSamples;
/// let mut samples = OrderedSamples::default();
/// samples.add("S-1".into(), vec!["WBC".into(), "HGB".into()], || None);
/// samples.add("S-2".into(), vec!["GLU".into()], || None);
/// samples.add("S-1".into(), vec!["HGB".into(), "PLT".into()], || None);
/// let samples = samples.into_samples();
/// assert_eq!(samples[0].codes, ["WBC", "HGB", "PLT"]);
/// assert_eq!(samples[1].sample_id, "S-2");
/// ```
#[derive(Debug, Default)]
pub struct OrderedSamples {
    samples: Vec<OrderedSample>,
    index: HashMap<String, usize>,
    codes: HashSet<(usize, String)>,
}

impl OrderedSamples {
    /// Adds `codes` to sample `sample_id`, created with `patient()` if new (the patient of
    /// the sample's first order is kept).
    pub fn add(
        &mut self,
        sample_id: String,
        codes: Vec<String>,
        patient: impl FnOnce() -> Option<OrderedPatient>,
    ) {
        let at = match self.index.get(&sample_id) {
            Some(&at) => at,
            None => {
                let at = self.samples.len();
                self.index.insert(sample_id.clone(), at);
                self.samples.push(OrderedSample {
                    sample_id,
                    codes: Vec::new(),
                    patient: patient(),
                });
                at
            }
        };
        for code in codes {
            if self.codes.insert((at, code.clone())) {
                self.samples[at].codes.push(code);
            }
        }
    }

    /// Whether no sample has been added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples, in order of first appearance.
    #[must_use]
    pub fn into_samples(self) -> Vec<OrderedSample> {
        self.samples
    }
}

/// One host query (Q record): the specimen asked about and the tests asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AstmQuery {
    /// The specimen (Q.3, see [`astm_records::Query::requested_specimen`]); `None` when the
    /// query names none (`ALL`, a range).
    pub specimen: Option<String>,
    /// The test codes of Q.5, `ALL` left out: empty asks for every test.
    pub codes: Vec<String>,
}

/// What an ASTM transfer from a LIS asks of an analyzer.
///
/// ```
/// use lis_templates::AstmOrders;
/// let transfer = b"H|\\^&|||LIS\rP|1|MRN-1||||DOE^JANE\rO|1|S-1||^^^WBC\\^^^HGB|R\r\
///                  O|2|S-2||^^^GLU|R||||||C\rL|1|N\r";
/// let read = AstmOrders::read(transfer)?;
/// assert!(read.terminated);
/// assert_eq!(read.orders.len(), 1);
/// assert_eq!(read.orders[0].codes, ["WBC", "HGB"]);
/// assert_eq!(read.orders[0].patient.as_ref().unwrap().practice_id, "MRN-1");
/// assert_eq!(read.withdrawn, ["O.12 C (cancel) for specimen S-2"]);
/// # Ok::<(), lis_templates::OrderReadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AstmOrders {
    /// Whether it has an H record.
    pub header: bool,
    /// Whether it has a P record.
    pub patient: bool,
    /// Its host queries, one per Q record (those that abort a request are in
    /// [`withdrawn`](Self::withdrawn)).
    pub queries: Vec<AstmQuery>,
    /// What it orders, merged per specimen (O.3 component 1), each under the patient of the
    /// P record above its first O record.
    pub orders: Vec<OrderedSample>,
    /// O records that are no orders (O.12 `C` cancels one; O.26 `F`, `P`, `C`, `X`, `I`
    /// report results, `Y`, `Z` say there is none) and Q records that abort the last
    /// request (Q.13 `A`), each said in words: none is answered with results.
    pub withdrawn: Vec<String>,
    /// Whether an L record ended it: without one the message is incomplete (the sender
    /// gave up, or was cut off, after the frames that arrived), and answering the orders
    /// that arrived would give results for part of a list.
    pub terminated: bool,
}

impl AstmOrders {
    /// Records a transfer may hold to be read. Parsing keeps about 175 bytes per record
    /// beside the text, so a 16 MiB transfer of 2-byte records took 1.4 GB; 100,000 order
    /// records are far beyond any work list and stay under 20 MB.
    pub const MAX_RECORDS: usize = 100_000;

    /// Reads a transfer (one or more H ... L messages).
    ///
    /// # Errors
    ///
    /// [`OrderReadError::TooManyRecords`] beyond [`MAX_RECORDS`](Self::MAX_RECORDS),
    /// [`OrderReadError::Astm`] when the text is not ASTM records (no H record first,
    /// unusable delimiters).
    pub fn read(text: &[u8]) -> Result<Self, OrderReadError> {
        let records = text
            .split(|b| *b == b'\r' || *b == b'\n')
            .filter(|r| !r.is_empty())
            .count();
        if records > Self::MAX_RECORDS {
            return Err(OrderReadError::TooManyRecords {
                records,
                max: Self::MAX_RECORDS,
            });
        }
        let message = Message::parse(text)?;
        let mut read = Self::default();
        let mut orders = OrderedSamples::default();
        for (index, record) in message.records().iter().enumerate() {
            match record.typed() {
                TypedRecord::Header(_) => read.header = true,
                TypedRecord::Terminator(_) => read.terminated = true,
                TypedRecord::Patient(_) => read.patient = true,
                TypedRecord::Query(q) => {
                    let specimen = q
                        .requested_specimen_id_as(Charset::Auto)
                        .map(std::borrow::Cow::into_owned);
                    if q.status_code()
                        .component(1)
                        .text()
                        .eq_ignore_ascii_case("A")
                    {
                        read.withdrawn.push(format!(
                            "Q.13 A (abort the last request) for {}",
                            specimen.as_deref().unwrap_or("all specimens")
                        ));
                        continue;
                    }
                    let codes = astm_records::test_ids(&q.universal_test_id())
                        .filter_map(|id| id.test_code_as(Charset::Auto).map(|c| c.into_owned()))
                        .filter(|c| !c.eq_ignore_ascii_case("ALL"))
                        .collect();
                    read.queries.push(AstmQuery { specimen, codes });
                }
                TypedRecord::Order(o) => {
                    let specimen = o
                        .specimen_id()
                        .component(1)
                        .text_as(Charset::Auto)
                        .into_owned();
                    if o.action_code()
                        .component(1)
                        .text()
                        .eq_ignore_ascii_case("C")
                    {
                        read.withdrawn
                            .push(format!("O.12 C (cancel) for specimen {specimen}"));
                        continue;
                    }
                    // `O` (an order), `Q` (orders answering a host query) or nothing is an
                    // order; an unknown letter is left to be one too.
                    let not_an_order = match o.report_kind() {
                        Some(kind) if kind.reports_results() => Some("results reported"),
                        Some(ReportType::NoOrder | ReportType::NoPatient) => {
                            Some("no order on record")
                        }
                        _ => None,
                    };
                    if let Some(why) = not_an_order {
                        read.withdrawn.push(format!(
                            "O.26 {} ({why}, not an order) for specimen {specimen}",
                            o.report_type().component(1).text()
                        ));
                        continue;
                    }
                    let codes: Vec<String> = o
                        .test_ids()
                        .filter_map(|id| id.test_code_as(Charset::Auto).map(|c| c.into_owned()))
                        .collect();
                    if specimen.is_empty() || codes.is_empty() {
                        continue;
                    }
                    // The P record the O record comes under, in its own message (a later H
                    // in the transfer starts afresh): its results carry that patient.
                    orders.add(specimen, codes, || {
                        message
                            .node(index)
                            .ancestor(RecordType::Patient)
                            .and_then(|p| Patient::new(p.record()))
                            .map(|p| OrderedPatient::from_astm(&p))
                    });
                }
                _ => {}
            }
        }
        read.orders = orders.into_samples();
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_results_query_names_its_specimens_and_tests() {
        let read = AstmOrders::read(
            b"H|\\^&|||LIS\rQ|1|^S-1||^^^GLU\\^^^ALL||||||||O\rQ|2|ALL||^^^ALL\rL|1|N\r",
        )
        .unwrap();
        assert!(read.header && !read.patient && read.orders.is_empty());
        assert_eq!(
            read.queries,
            [
                AstmQuery {
                    specimen: Some("S-1".into()),
                    codes: vec!["GLU".into()]
                },
                AstmQuery {
                    specimen: None,
                    codes: vec![]
                },
            ]
        );
    }

    #[test]
    fn aborts_and_reports_are_withdrawals_not_orders() {
        let read = AstmOrders::read(
            b"H|\\^&\rQ|1|^S-9||||||||||A\rP|1\rO|1|S-1||^^^WBC|||||||||||||||||||||F\r\
              O|2|S-2||^^^WBC|||||||||||||||||||||Y\rO|3|S-3||^^^WBC|||||||||||||||||||||Q\rL|1\r",
        )
        .unwrap();
        assert_eq!(
            read.withdrawn,
            [
                "Q.13 A (abort the last request) for S-9",
                "O.26 F (results reported, not an order) for specimen S-1",
                "O.26 Y (no order on record, not an order) for specimen S-2",
            ]
        );
        assert_eq!(read.orders.len(), 1);
        assert_eq!(read.orders[0].sample_id, "S-3");
    }

    #[test]
    fn orders_merge_per_specimen_under_their_own_patient() {
        let read = AstmOrders::read(
            b"H|\\^&\rP|1|MRN-1\rO|1|S-1||^^^WBC\\^^^HGB\rP|2|MRN-2\rO|1|S-2||^^^GLU\r\
              O|2|S-1||^^^HGB\\^^^PLT\rO|3|||^^^K\r",
        )
        .unwrap();
        assert!(!read.terminated, "no L record");
        let got: Vec<(&str, &[String], &str)> = read
            .orders
            .iter()
            .map(|o| {
                let patient = o.patient.as_ref().unwrap();
                (
                    o.sample_id.as_str(),
                    o.codes.as_slice(),
                    patient.practice_id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "S-1",
                    &["WBC".into(), "HGB".into(), "PLT".into()][..],
                    "MRN-1"
                ),
                ("S-2", &["GLU".into()][..], "MRN-2"),
            ]
        );
    }

    #[test]
    fn test_codes_decode_like_specimens() {
        // A UTF-8 test code was read as Latin-1 while its specimen was read as UTF-8, so
        // `Bêta` came back as `BÃªta` and matched no test of the template.
        let read = AstmOrders::read(
            "H|\\^&\rQ|1|^S-\u{e9}||^^^B\u{ea}ta\rP|1\rO|1|S-\u{e9}||^^^B\u{ea}ta\r".as_bytes(),
        )
        .unwrap();
        assert_eq!(read.queries[0].codes, ["B\u{ea}ta"]);
        assert_eq!(read.orders[0].sample_id, "S-\u{e9}");
        assert_eq!(read.orders[0].codes, ["B\u{ea}ta"]);
        // Latin-1 bytes still read as Latin-1.
        let read = AstmOrders::read(b"H|\\^&\rP|1\rO|1|S-1||^^^B\xeata\r").unwrap();
        assert_eq!(read.orders[0].codes, ["B\u{ea}ta"]);
    }

    proptest::proptest! {
        /// Any text built from ASTM's record letters and delimiters reads without a panic,
        /// and what it orders is merged: each specimen once, with codes, each code once.
        #[test]
        fn any_transfer_reads_into_merged_orders(
            header in proptest::bool::weighted(0.9),
            body in proptest::collection::vec(
                proptest::sample::select(b"HPOQRLC|\\^&\r\nSAF1".to_vec()),
                0..400,
            )
        ) {
            let mut text = if header { b"H|\\^&\r".to_vec() } else { Vec::new() };
            text.extend(body);
            let Ok(read) = AstmOrders::read(&text) else { return Ok(()) };
            let mut specimens = HashSet::new();
            for order in &read.orders {
                proptest::prop_assert!(specimens.insert(order.sample_id.clone()));
                proptest::prop_assert!(!order.sample_id.is_empty() && !order.codes.is_empty());
                let codes: HashSet<_> = order.codes.iter().collect();
                proptest::prop_assert_eq!(codes.len(), order.codes.len());
            }
        }
    }

    #[test]
    fn what_cannot_be_read_is_an_error() {
        assert!(matches!(
            AstmOrders::read(b"not astm"),
            Err(OrderReadError::Astm(_))
        ));
        let many = "H|\\^&\r".to_owned() + &"O|1|S||^^^A\r".repeat(AstmOrders::MAX_RECORDS);
        let err = AstmOrders::read(many.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "100001 records, more than the 100000 a transfer may hold"
        );
    }
}
