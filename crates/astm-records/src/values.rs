//! Typed values found in result and order records: test IDs, numbers, ranges, flags, status.

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while, take_while1};
use nom::character::complete::one_of;
use nom::combinator::{all_consuming, map, map_opt, opt, recognize, value};
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

use crate::record::{Component, Field, Repeat};
use crate::text::Charset;

/// A universal test ID (O.5, R.3, Q.5): `universal ID ^ name ^ type ^ manufacturer's local code ^ …`.
///
/// The standard leaves components 1–3 for a universal code (usually empty) and puts the instrument's
/// own code in component 4 (`^^^WBC`); vendors differ: Sysmex sends `^^^^WBC^1` (component 5),
/// Spotchem-style exports a bare `Na` (component 1), Cepheid GeneXpert `^MTB-RIF^^…` (component 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestId<'a> {
    repeat: Repeat<'a>,
}

impl<'a> TestId<'a> {
    /// Wraps one repeat of a test ID field.
    pub const fn new(repeat: Repeat<'a>) -> Self {
        Self { repeat }
    }

    /// The repeat this ID was read from.
    pub const fn repeat(&self) -> Repeat<'a> {
        self.repeat
    }

    /// Component `number` (1-based).
    pub fn component(&self, number: usize) -> Component<'a> {
        self.repeat.component(number)
    }

    /// Component 1, the universal test ID.
    pub fn universal_id(&self) -> Component<'a> {
        self.component(1)
    }

    /// Component 2, the universal test name.
    pub fn name(&self) -> Component<'a> {
        self.component(2)
    }

    /// Component 3, the universal test ID type.
    pub fn id_type(&self) -> Component<'a> {
        self.component(3)
    }

    /// Component 4, the manufacturer's local code (where the standard puts it).
    pub fn local_code(&self) -> Component<'a> {
        self.component(4)
    }

    /// The test code wherever the vendor put it. `None` when every component is empty.
    ///
    /// In the Cepheid GeneXpert layout, eight components `^MTB-RIF^^Xpert^^^rpoB1^Ct` where
    /// component 4 is the system name shared by every result, component 2 (taken when there are
    /// exactly eight components, components 1 and 3 are empty and component 2 is not: a
    /// vendor-specific reading). Otherwise the first non-empty component from component 4
    /// onwards (the local code: `^Glucose^^GLU` and `^Glucose^^GLU^^^P` give `GLU`, not the test
    /// name), else the first non-empty of components 1–3.
    ///
    /// ```
    /// use astm_records::{Delimiters, Record, ResultRecord};
    /// for (raw, code) in [
    ///     ("R|1|^^^WBC|5.8", "WBC"),
    ///     ("R|1|^^^^WBC^1|5.8", "WBC"),
    ///     ("R|1|Na|131", "Na"),
    ///     ("R|1|^MTB-RIF^^Xpert^^^rpoB1^Ct|^0.0", "MTB-RIF"),
    ///     ("R|1|^MTB-RIF^^Xpert^^^^|MTB DETECTED", "MTB-RIF"),
    ///     ("R|1|^Glucose^^GLU|5.5", "GLU"),
    ///     ("R|1|^Glucose^^GLU^^^P|5.5", "GLU"),
    /// ] {
    ///     let record = Record::parse(raw.as_bytes(), &Delimiters::STANDARD)?;
    ///     let result = ResultRecord::new(record).unwrap();
    ///     assert_eq!(result.test_code().as_deref(), Some(code));
    /// }
    /// # Ok::<(), astm_records::RecordError>(())
    /// ```
    pub fn test_code(&self) -> Option<Cow<'a, str>> {
        self.test_code_as(Charset::Latin1)
    }

    /// [`test_code`](Self::test_code) decoded with the given character set.
    ///
    /// ```
    /// use astm_records::{Charset, Delimiters, Record, ResultRecord};
    /// let raw = "R|1|^^^B\u{e9}ta|5.8";
    /// let record = Record::parse(raw.as_bytes(), &Delimiters::STANDARD)?;
    /// let result = ResultRecord::new(record).unwrap();
    /// assert_eq!(result.test_id().test_code_as(Charset::Auto).as_deref(), Some("B\u{e9}ta"));
    /// assert_eq!(result.test_id().test_code().as_deref(), Some("B\u{c3}\u{a9}ta"));
    /// # Ok::<(), astm_records::RecordError>(())
    /// ```
    pub fn test_code_as(&self, charset: Charset) -> Option<Cow<'a, str>> {
        let components: Vec<Component<'a>> = self.repeat.components().collect();
        let pick = |c: &&Component<'a>| !is_blank(c);
        let genexpert = match components.as_slice() {
            [first, second, third, _, _, _, _, _]
                if is_blank(first) && !is_blank(second) && is_blank(third) =>
            {
                Some(second)
            }
            _ => None,
        };
        genexpert
            .or_else(|| components.get(3..).and_then(|tail| tail.iter().find(pick)))
            .or_else(|| components.iter().take(3).find(pick))
            .map(|c| trimmed_text(c, charset))
    }

    /// Component 7, the result name in the Cepheid GeneXpert layout (`MTB`, `rpoB1`, `SPC`): one
    /// test sends several results told apart by this. Trimmed; `None` when empty.
    pub fn result_name(&self) -> Option<Cow<'a, str>> {
        self.result_name_as(Charset::Latin1)
    }

    /// [`result_name`](Self::result_name) decoded with the given character set.
    pub fn result_name_as(&self, charset: Charset) -> Option<Cow<'a, str>> {
        non_blank(self.component(7), charset)
    }

    /// Component 8, the complementary result name in the Cepheid GeneXpert layout (`Ct`, `EndPt`):
    /// which value of a result (cycle threshold, end point) the record carries. Trimmed; `None` when
    /// empty.
    pub fn complementary_result_name(&self) -> Option<Cow<'a, str>> {
        self.complementary_result_name_as(Charset::Latin1)
    }

    /// [`complementary_result_name`](Self::complementary_result_name) decoded with the given
    /// character set.
    pub fn complementary_result_name_as(&self, charset: Charset) -> Option<Cow<'a, str>> {
        non_blank(self.component(8), charset)
    }
}

fn is_blank(component: &Component<'_>) -> bool {
    component.raw().trim_ascii().is_empty()
}

fn non_blank<'a>(component: Component<'a>, charset: Charset) -> Option<Cow<'a, str>> {
    (!is_blank(&component)).then(|| trimmed_text(&component, charset))
}

/// The component as text without leading and trailing whitespace (fixed-width senders pad).
pub(crate) fn trimmed_text<'a>(component: &Component<'a>, charset: Charset) -> Cow<'a, str> {
    match component.text_as(charset) {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
        Cow::Owned(text) => Cow::Owned(text.trim().to_owned()),
    }
}

/// All test IDs of a (possibly repeated) test ID field.
pub fn test_ids<'a>(field: &Field<'a>) -> impl Iterator<Item = TestId<'a>> + use<'a> {
    field.repeats().filter(|r| !r.is_empty()).map(TestId::new)
}

/// A comparison prefix on a value or range bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparator {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

/// A measurement value read as a number (R.4), e.g. `5.8`, `7,41`, `> 15000.00`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericValue {
    /// A `<`/`>` prefix, for values outside the measuring range.
    pub comparator: Option<Comparator>,
    /// The number; a decimal comma is read as a point.
    pub value: f64,
}

impl NumericValue {
    /// Parses `[<|<=|>|>=] number` with optional spaces (a decimal point or comma, and an optional
    /// exponent: `1.23E+05`); `None` for anything else (`-----`, `Positive`), and for a number
    /// too large for an `f64` (`1E999`), which would read as infinity.
    ///
    /// ```
    /// use astm_records::{Comparator, NumericValue};
    /// let above = NumericValue::parse(b"> 1.5E+07").unwrap();
    /// assert_eq!((above.comparator, above.value), (Some(Comparator::Greater), 1.5e7));
    /// assert_eq!(NumericValue::parse(b"1E999"), None);
    /// ```
    pub fn parse(text: &[u8]) -> Option<Self> {
        let (_, (comparator, value)) = all_consuming(delimited(
            spaces,
            (opt(comparator), preceded(spaces, number)),
            spaces,
        ))
        .parse(text)
        .ok()?;
        Some(Self { comparator, value })
    }
}

/// A reference range (R.6): `3.5 to 5.1`, `4.0-10.0`, `10-120`, `-5--1`, `<5`, `>=10`, or two
/// components `3.5^5.1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceRange {
    /// Lower limit, if any.
    pub low: Option<f64>,
    /// Upper limit, if any.
    pub high: Option<f64>,
}

impl ReferenceRange {
    /// Parses range text; `None` when it is not a range this grammar knows, or its low end
    /// is above its high end (`10-4`: which end is wrong cannot be told).
    ///
    /// ```
    /// use astm_records::ReferenceRange;
    /// assert_eq!(ReferenceRange::parse(b"3.5 to 5.1"), Some(ReferenceRange { low: Some(3.5), high: Some(5.1) }));
    /// assert_eq!(ReferenceRange::parse(b"4.0-10.0"), Some(ReferenceRange { low: Some(4.0), high: Some(10.0) }));
    /// assert_eq!(ReferenceRange::parse(b"<5"), Some(ReferenceRange { low: None, high: Some(5.0) }));
    /// assert_eq!(ReferenceRange::parse(b"10-4"), None);
    /// ```
    pub fn parse(text: &[u8]) -> Option<Self> {
        all_consuming(delimited(spaces, alt((two_sided, one_sided)), spaces))
            .parse(text)
            .ok()
            .map(|(_, range)| range)
    }

    /// Reads a range field: low and high in components 1 and 2 when both are numbers (`3.5^5.1`),
    /// an upper limit alone when component 1 is empty (`^5.1`), else range text in component 1
    /// (a non-numeric component 2 labels the range, as in Horiba Yumizen's
    /// `0.15 - 0.40^REFERENCE_RANGE`). `None` as for [`parse`](Self::parse), a low end above
    /// the high end included.
    pub fn from_field(field: &Field<'_>) -> Option<Self> {
        let first = field.first();
        let (low, high) = (first.component(1), first.component(2));
        if !high.is_empty()
            && let Some(high) = NumericValue::parse(&high.unescaped())
        {
            if low.is_empty() {
                return Some(Self {
                    low: None,
                    high: Some(high.value),
                });
            }
            if let Some(low) = NumericValue::parse(&low.unescaped()) {
                return (low.value <= high.value).then_some(Self {
                    low: Some(low.value),
                    high: Some(high.value),
                });
            }
        }
        Self::parse(&low.unescaped())
    }
}

fn spaces(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while(|b: u8| b == b' ' || b == b'\t').parse(input)
}

fn number(input: &[u8]) -> IResult<&[u8], f64> {
    let digits = || take_while1(|b: u8| b.is_ascii_digit());
    // An exponent for values written in scientific notation, as viral loads often are
    // (`1.23E+05` copies/mL).
    let exponent = (one_of("eE"), opt(one_of("+-")), digits());
    let text = recognize((
        opt(one_of("+-")),
        digits(),
        opt((one_of(".,"), digits())),
        opt(exponent),
    ));
    map_opt(text, |t: &[u8]| {
        let t: String = t
            .iter()
            .map(|&b| if b == b',' { '.' } else { char::from(b) })
            .collect();
        // The recognised text always reads as an f64, but one too large for it reads as
        // infinity, which no instrument meant.
        t.parse::<f64>().ok().filter(|n| n.is_finite())
    })
    .parse(input)
}

fn comparator(input: &[u8]) -> IResult<&[u8], Comparator> {
    alt((
        value(Comparator::LessOrEqual, tag("<=")),
        value(Comparator::GreaterOrEqual, tag(">=")),
        value(Comparator::Less, tag("<")),
        value(Comparator::Greater, tag(">")),
    ))
    .parse(input)
}

fn two_sided(input: &[u8]) -> IResult<&[u8], ReferenceRange> {
    let separator = delimited(
        spaces,
        alt((tag_no_case("to"), tag(".."), tag("-"), tag("~"))),
        spaces,
    );
    map_opt((number, separator, number), |(low, _, high)| {
        (low <= high).then_some(ReferenceRange {
            low: Some(low),
            high: Some(high),
        })
    })
    .parse(input)
}

fn one_sided(input: &[u8]) -> IResult<&[u8], ReferenceRange> {
    map(
        (comparator, preceded(spaces, number)),
        |(cmp, n)| match cmp {
            Comparator::Less | Comparator::LessOrEqual => ReferenceRange {
                low: None,
                high: Some(n),
            },
            Comparator::Greater | Comparator::GreaterOrEqual => ReferenceRange {
                low: Some(n),
                high: None,
            },
        },
    )
    .parse(input)
}

/// A result abnormal flag (R.7), per LIS2-A2 §10.1.7 as cited by instrument drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AbnormalFlag {
    /// `L` below low normal.
    Low,
    /// `H` above high normal.
    High,
    /// `LL` below panic low.
    PanicLow,
    /// `HH` above panic high.
    PanicHigh,
    /// `<` below absolute low (off low scale).
    BelowScale,
    /// `>` above absolute high (off high scale).
    AboveScale,
    /// `N` normal.
    Normal,
    /// `A` abnormal.
    Abnormal,
    /// `U` significant change up.
    ChangeUp,
    /// `D` significant change down.
    ChangeDown,
    /// `B` better.
    Better,
    /// `W` worse.
    Worse,
    /// Anything else (vendor flags); read the field text.
    Other,
}

impl AbnormalFlag {
    /// Classifies flag text (case-sensitive, spaces trimmed).
    pub fn parse(text: &[u8]) -> Self {
        match text.trim_ascii() {
            b"L" => Self::Low,
            b"H" => Self::High,
            b"LL" => Self::PanicLow,
            b"HH" => Self::PanicHigh,
            b"<" => Self::BelowScale,
            b">" => Self::AboveScale,
            b"N" => Self::Normal,
            b"A" => Self::Abnormal,
            b"U" => Self::ChangeUp,
            b"D" => Self::ChangeDown,
            b"B" => Self::Better,
            b"W" => Self::Worse,
            _ => Self::Other,
        }
    }

    /// The flag as LIS2-A2 writes it (`L`, `HH`, `>` …), which [`parse`](Self::parse) reads
    /// back; `None` for [`Other`](Self::Other), which stands for text this type does not
    /// keep. A flag converts into a builder's field ([`FieldBuf`](crate::FieldBuf)) too.
    ///
    /// ```
    /// use astm_records::{AbnormalFlag, Delimiters, ResultBuilder};
    /// assert_eq!(AbnormalFlag::PanicHigh.code(), Some("HH"));
    /// let r = ResultBuilder::new().value("9.1").abnormal_flags(AbnormalFlag::High).build();
    /// assert_eq!(r.to_bytes(&Delimiters::STANDARD)?, b"R|||9.1|||H");
    /// # Ok::<(), astm_records::BuildError>(())
    /// ```
    pub const fn code(self) -> Option<&'static str> {
        Some(match self {
            Self::Low => "L",
            Self::High => "H",
            Self::PanicLow => "LL",
            Self::PanicHigh => "HH",
            Self::BelowScale => "<",
            Self::AboveScale => ">",
            Self::Normal => "N",
            Self::Abnormal => "A",
            Self::ChangeUp => "U",
            Self::ChangeDown => "D",
            Self::Better => "B",
            Self::Worse => "W",
            Self::Other => return None,
        })
    }
}

/// Report type (O.26): whether an O record asks for tests or reports on them (LIS2-A2, as
/// restated by vendor manuals). A LIS sends orders as `O`, or `Q` when they answer an
/// instrument's host query; an instrument reports with `F`, `P`, `C`, `X` or `I`; `Y` and `Z`
/// answer a query with "nothing ordered".
///
/// ```
/// use astm_records::{Message, ReportType, TypedRecord};
/// let message = Message::parse(b"H|\\^&\rO|1|S1||^^^TSH|R||||||||||||||||||||F\rL|1|N\r")?;
/// let TypedRecord::Order(order) = message.records()[1].typed() else { unreachable!() };
/// assert_eq!(order.report_kind(), Some(ReportType::Final));
/// assert!(!ReportType::Final.is_order());
/// # Ok::<(), astm_records::MessageError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportType {
    /// `O` an order: run these tests.
    Order,
    /// `Q` orders in response to a query (a host query's answer).
    QueryResponse,
    /// `C` correction of previously transmitted results.
    Correction,
    /// `P` preliminary results.
    Preliminary,
    /// `F` final results.
    Final,
    /// `X` the order cannot be done.
    CannotBeDone,
    /// `I` in instrument, results pending.
    Pending,
    /// `Y` no order on record for this test (in response to a query).
    NoOrder,
    /// `Z` no record of this patient (in response to a query).
    NoPatient,
    /// Anything else.
    Other,
}

impl ReportType {
    /// Classifies report type text (case-insensitive, spaces trimmed); `None` when empty.
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text = text.trim_ascii();
        let [letter] = text else {
            return (!text.is_empty()).then_some(Self::Other);
        };
        Some(match letter.to_ascii_uppercase() {
            b'O' => Self::Order,
            b'Q' => Self::QueryResponse,
            b'C' => Self::Correction,
            b'P' => Self::Preliminary,
            b'F' => Self::Final,
            b'X' => Self::CannotBeDone,
            b'I' => Self::Pending,
            b'Y' => Self::NoOrder,
            b'Z' => Self::NoPatient,
            _ => Self::Other,
        })
    }

    /// Whether the record asks for tests to be run: [`Order`](Self::Order) and
    /// [`QueryResponse`](Self::QueryResponse). [`Other`](Self::Other) is not taken for an
    /// order; an O record without a report type is (see [`Order::report_kind`](crate::Order::report_kind)).
    pub const fn is_order(self) -> bool {
        matches!(self, Self::Order | Self::QueryResponse)
    }

    /// Whether the record reports results: `C`, `P`, `F`, `X`, `I`.
    pub const fn reports_results(self) -> bool {
        matches!(
            self,
            Self::Correction | Self::Preliminary | Self::Final | Self::CannotBeDone | Self::Pending
        )
    }
}

/// Result status (R.9). `F` and `X` are the common values; the other meanings follow LIS2-A2 as
/// restated by vendor manuals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResultStatus {
    /// `C` correction of a previously transmitted result.
    Correction,
    /// `P` preliminary.
    Preliminary,
    /// `F` final.
    Final,
    /// `X` the test cannot be done.
    CannotBeDone,
    /// `I` in instrument, result pending.
    Pending,
    /// `S` partial result.
    Partial,
    /// `M` MIC level.
    MicLevel,
    /// `R` previously transmitted.
    Retransmitted,
    /// `N` contains necessary information to run a new order.
    NewOrderInformation,
    /// `Q` response to an outstanding query.
    QueryResponse,
    /// `V` operator verified or approved.
    Verified,
    /// `W` warning: validity is questionable.
    Warning,
    /// Anything else.
    Other,
}

impl ResultStatus {
    /// Classifies status text (case-insensitive, spaces trimmed); `None` when empty.
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text = text.trim_ascii();
        let [letter] = text else {
            return (!text.is_empty()).then_some(Self::Other);
        };
        Some(match letter.to_ascii_uppercase() {
            b'C' => Self::Correction,
            b'P' => Self::Preliminary,
            b'F' => Self::Final,
            b'X' => Self::CannotBeDone,
            b'I' => Self::Pending,
            b'S' => Self::Partial,
            b'M' => Self::MicLevel,
            b'R' => Self::Retransmitted,
            b'N' => Self::NewOrderInformation,
            b'Q' => Self::QueryResponse,
            b'V' => Self::Verified,
            b'W' => Self::Warning,
            _ => Self::Other,
        })
    }

    /// The status letter (`F`, `C`, `X` …), which [`parse`](Self::parse) reads back; `None`
    /// for [`Other`](Self::Other). A status converts into a builder's field
    /// ([`FieldBuf`](crate::FieldBuf)) too.
    ///
    /// ```
    /// use astm_records::{Delimiters, ResultBuilder, ResultStatus};
    /// assert_eq!(ResultStatus::Correction.code(), Some("C"));
    /// let r = ResultBuilder::new().value("5.5").status(ResultStatus::Final).build();
    /// assert_eq!(r.to_bytes(&Delimiters::STANDARD)?, b"R|||5.5|||||F");
    /// # Ok::<(), astm_records::BuildError>(())
    /// ```
    pub const fn code(self) -> Option<&'static str> {
        Some(match self {
            Self::Correction => "C",
            Self::Preliminary => "P",
            Self::Final => "F",
            Self::CannotBeDone => "X",
            Self::Pending => "I",
            Self::Partial => "S",
            Self::MicLevel => "M",
            Self::Retransmitted => "R",
            Self::NewOrderInformation => "N",
            Self::QueryResponse => "Q",
            Self::Verified => "V",
            Self::Warning => "W",
            Self::Other => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(low: Option<f64>, high: Option<f64>) -> Option<ReferenceRange> {
        Some(ReferenceRange { low, high })
    }

    #[test]
    fn ranges() {
        assert_eq!(
            ReferenceRange::parse(b"3.5 to 5.1"),
            range(Some(3.5), Some(5.1))
        );
        assert_eq!(
            ReferenceRange::parse(b"3.5 TO 5.1"),
            range(Some(3.5), Some(5.1))
        );
        assert_eq!(
            ReferenceRange::parse(b"4.0-10.0"),
            range(Some(4.0), Some(10.0))
        );
        assert_eq!(
            ReferenceRange::parse(b"10-120"),
            range(Some(10.0), Some(120.0))
        );
        assert_eq!(
            ReferenceRange::parse(b" 1,5 - 3,0 "),
            range(Some(1.5), Some(3.0))
        );
        assert_eq!(
            ReferenceRange::parse(b"-5--1"),
            range(Some(-5.0), Some(-1.0))
        );
        assert_eq!(
            ReferenceRange::parse(b"0.5..2"),
            range(Some(0.5), Some(2.0))
        );
        assert_eq!(ReferenceRange::parse(b"<5"), range(None, Some(5.0)));
        assert_eq!(ReferenceRange::parse(b">= 10"), range(Some(10.0), None));
        assert_eq!(ReferenceRange::parse(b"5-5"), range(Some(5.0), Some(5.0)));
        // Reversed or unbounded ends are not a range.
        for bad in [
            &b""[..],
            b"normal",
            b"5",
            b"1-",
            b"1-2-3",
            b"a to b",
            b"10-4",
            b"-1--5",
            b"1-1e999",
            b"<1E400",
        ] {
            assert_eq!(ReferenceRange::parse(bad), None, "{bad:?}");
        }
    }

    /// Horiba Yumizen H500 (`captures/horiba_yumizen_h500_raw.bin`) labels its range in component 2:
    /// `0.15 - 0.40^REFERENCE_RANGE`. The limits are the text of component 1.
    #[test]
    fn range_labelled_in_component_2_reads_component_1() {
        use crate::{Delimiters, Record, ResultRecord};
        let raw = b"R|1|^^^PCT^51637-7|0.13|%|0.15 - 0.40^REFERENCE_RANGE|L||W||PATHO^^USER|20200407151558";
        let result = ResultRecord::new(Record::parse(raw, &Delimiters::STANDARD).unwrap()).unwrap();
        assert_eq!(result.reference_range(), range(Some(0.15), Some(0.40)));
        // Two numeric components are still low and high.
        let two = Record::parse(b"R|1|^^^A|1||3.5^5.1", &Delimiters::STANDARD).unwrap();
        let two = ResultRecord::new(two).unwrap();
        assert_eq!(two.reference_range(), range(Some(3.5), Some(5.1)));
        // An empty component 1 leaves only the upper limit.
        let upper = Record::parse(b"R|1|^^^A|1||^5.1", &Delimiters::STANDARD).unwrap();
        let upper = ResultRecord::new(upper).unwrap();
        assert_eq!(upper.reference_range(), range(None, Some(5.1)));
        let neither = Record::parse(b"R|1|^^^A|1||^", &Delimiters::STANDARD).unwrap();
        assert_eq!(ResultRecord::new(neither).unwrap().reference_range(), None);
        let reversed = Record::parse(b"R|1|^^^A|1||5.1^3.5", &Delimiters::STANDARD).unwrap();
        assert_eq!(ResultRecord::new(reversed).unwrap().reference_range(), None);
    }

    #[test]
    fn numbers() {
        let n = |t: &[u8]| NumericValue::parse(t).map(|n| (n.comparator, n.value));
        assert_eq!(n(b"5.8"), Some((None, 5.8)));
        assert_eq!(n(b"7,41"), Some((None, 7.41)));
        assert_eq!(n(b"> 15000.00"), Some((Some(Comparator::Greater), 15000.0)));
        assert_eq!(n(b"<=0.1"), Some((Some(Comparator::LessOrEqual), 0.1)));
        assert_eq!(n(b"-3"), Some((None, -3.0)));
        assert_eq!(n(b"1.23E+05"), Some((None, 123_000.0)));
        // Too large for an f64: not infinity.
        assert_eq!(n(b"1E999"), None);
        assert_eq!(n(&[b'9'; 400]), None);
        assert_eq!(n(b"1E-999"), Some((None, 0.0)));
        assert_eq!(n(b"<2,0e1"), Some((Some(Comparator::Less), 20.0)));
        assert_eq!(n(b"5e-3"), Some((None, 0.005)));
        assert_eq!(n(b"5E"), None);
        assert_eq!(n(b"5E+"), None);
        assert_eq!(n(b"-----"), None);
        assert_eq!(n(b"Positive"), None);
        assert_eq!(n(b""), None);
    }

    /// Lines from `captures/senaite/genexpert.txt`: component 4 (`Xpert`) names the system, so every
    /// result would share it as its code.
    #[test]
    fn genexpert_test_code_is_component_2_with_result_names_in_7_and_8() {
        use crate::{Delimiters, Record, ResultRecord};
        let delimiters = Delimiters::from_header(b"H|@^\\").unwrap();
        let result = |raw: &'static [u8]| {
            ResultRecord::new(Record::parse(raw, &delimiters).unwrap()).unwrap()
        };
        let mtb = result(b"R|1|^MTB-RIF^^Xpert^Xpert MTB-RIF Ultra^4^MTB^|NOT DETECTED^");
        let rpob1_ct = result(b"R|3|^MTB-RIF^^Xpert^^^rpoB1^Ct|^0.0");
        let spc_end_point = result(b"R|16|^MTB-RIF^^Xpert^^^SPC^EndPt|^159.0");
        for r in [&mtb, &rpob1_ct, &spc_end_point] {
            assert_eq!(r.test_code().as_deref(), Some("MTB-RIF"));
        }
        let names = |r: &ResultRecord<'_>| {
            let id = r.test_id();
            (
                id.result_name().map(Cow::into_owned),
                id.complementary_result_name().map(Cow::into_owned),
            )
        };
        assert_eq!(names(&mtb), (Some("MTB".into()), None));
        assert_eq!(names(&rpob1_ct), (Some("rpoB1".into()), Some("Ct".into())));
        assert_eq!(
            names(&spc_end_point),
            (Some("SPC".into()), Some("EndPt".into()))
        );
        // Blank components read as absent.
        let padded = Record::parse(b"R|1|^^^WBC^^^  ^ |1", &Delimiters::STANDARD).unwrap();
        let padded = ResultRecord::new(padded).unwrap();
        assert_eq!(padded.test_code().as_deref(), Some("WBC"));
        assert_eq!(names(&padded), (None, None));
    }

    #[test]
    fn flags_and_status() {
        assert_eq!(AbnormalFlag::parse(b"HH"), AbnormalFlag::PanicHigh);
        assert_eq!(AbnormalFlag::parse(b">"), AbnormalFlag::AboveScale);
        assert_eq!(AbnormalFlag::parse(b"W"), AbnormalFlag::Worse);
        assert_eq!(AbnormalFlag::parse(b"XYZ"), AbnormalFlag::Other);
        assert_eq!(ResultStatus::parse(b"F"), Some(ResultStatus::Final));
        assert_eq!(ResultStatus::parse(b"x"), Some(ResultStatus::CannotBeDone));
        assert_eq!(ResultStatus::parse(b"FF"), Some(ResultStatus::Other));
        assert_eq!(ResultStatus::parse(b""), None);
    }
}
