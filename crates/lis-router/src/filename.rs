//! Output file names that cannot leave their directory, and input file masks.

use std::cmp::Ordering;

use mllp_hl7::Message;

/// Longest sanitised part of a file name.
pub const MAX_PART_LEN: usize = 64;

/// Keeps letters, digits, `.`, `_` and `-`; every other character becomes `_`, a run of
/// dots becomes one `_` (so `..` cannot survive), and the result is cut to `max_len`
/// bytes. A result of a single `.` (which would name the directory itself) is `_`.
///
/// ```
/// use lis_router::filename::sanitize;
///
/// assert_eq!(sanitize("../../x", 64), "____x");
/// assert_eq!(sanitize("LAB/ANALYZER 1", 64), "LAB_ANALYZER_1");
/// assert_eq!(sanitize("v2.5", 64), "v2.5");
/// assert_eq!(sanitize(".", 64), "_");
/// ```
#[must_use]
pub fn sanitize(text: &str, max_len: usize) -> String {
    let mut out = sanitize_part(text, max_len);
    // Checked after the cut: `.hl7` cut to one byte is `.` too.
    if out == "." {
        out.replace_range(.., "_");
    }
    out
}

/// [`sanitize`] for text that only ever goes inside a name (a prefix, a suffix, a header
/// field between underscores): there a lone `.` names nothing, and is kept.
pub(crate) fn sanitize_part(text: &str, max_len: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_len));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() >= max_len {
            break;
        }
        match c {
            '.' if chars.peek() == Some(&'.') => {
                while chars.peek() == Some(&'.') {
                    chars.next();
                }
                out.push('_');
            }
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => out.push(c),
            _ => out.push('_'),
        }
    }
    out
}

/// Whether Windows takes a file of this name for a device: `CON`, `PRN`, `AUX`, `NUL`,
/// `COM0`-`COM9` or `LPT0`-`LPT9` (any case, trailing spaces ignored) before the first
/// `.`, whatever follows. A message written under such a name on Windows, or to a share
/// a Windows LIS reads, goes to the device.
///
/// ```
/// use lis_router::filename::is_windows_device;
///
/// assert!(is_windows_device("NUL.x_FAC_LIS_HOSP_ORU_20240101120000_00000.hl7"));
/// assert!(is_windows_device("com1 .hl7"));
/// assert!(!is_windows_device("CON_FAC.hl7"));
/// ```
#[must_use]
pub fn is_windows_device(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = base.to_ascii_uppercase();
    match upper.as_bytes() {
        [a, b, c] => matches!(&[*a, *b, *c], b"CON" | b"PRN" | b"AUX" | b"NUL"),
        [a, b, c, digit] => matches!(&[*a, *b, *c], b"COM" | b"LPT") && digit.is_ascii_digit(),
        _ => false,
    }
}

/// The `MSH-3_MSH-4_MSH-5_MSH-6_TYPE` head of an `hl7prefix` output file name: the
/// sending and receiving application and facility and MSH-9.1, each [`sanitize`]d and cut
/// to [`MAX_PART_LEN`]. A payload that is not HL7 with an MSH segment, or has no message
/// type, gives `NOTHL7` as the type.
///
/// ```
/// use lis_router::filename::hl7_name_head;
///
/// let head = hl7_name_head(b"MSH|^~\\&|LAB|FAC/1|LIS|HOSP|20240101||ORU^R01|1|P|2.5\r");
/// assert_eq!(head, "LAB_FAC_1_LIS_HOSP_ORU");
/// assert_eq!(hl7_name_head(b"not hl7"), "____NOTHL7");
/// ```
#[must_use]
pub fn hl7_name_head(payload: &[u8]) -> String {
    let part = |raw: &[u8]| sanitize_part(&String::from_utf8_lossy(raw), MAX_PART_LEN);
    let parts = match Message::parse(payload) {
        Ok(m) if m.msh().is_some() => [
            part(m.sending_application().raw()),
            part(m.sending_facility().raw()),
            part(m.receiving_application().raw()),
            part(m.receiving_facility().raw()),
            part(m.message_type().code),
        ],
        _ => Default::default(),
    };
    let kind = if parts[4].is_empty() {
        "NOTHL7"
    } else {
        &parts[4]
    };
    format!("{}_{}_{}_{}_{kind}", parts[0], parts[1], parts[2], parts[3])
}

/// Whether `name` matches a shell-style `mask`: `*` any run, `?` one character,
/// `[abc]` / `[a-z]` / `[!abc]` one of a set (or not), as Python's `fnmatch` reads them (`^`
/// does not negate). Case-sensitive.
///
/// ```
/// use lis_router::filename::mask_matches;
///
/// assert!(mask_matches("tokis_*_.hl7", "tokis_0001_.hl7"));
/// assert!(mask_matches("*.dat", "a.dat"));
/// assert!(!mask_matches("*.dat", "a.dat.tmp"));
/// ```
#[must_use]
pub fn mask_matches(mask: &str, name: &str) -> bool {
    let mask: Vec<char> = mask.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut m, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match mask.get(m) {
            Some('*') => {
                star = Some((m, n));
                m += 1;
                continue;
            }
            Some('?') => Some(m + 1),
            Some('[') => class_match(&mask, m, name[n]),
            Some(&c) if c == name[n] => Some(m + 1),
            _ => None,
        };
        match step {
            Some(next) => {
                m = next;
                n += 1;
            }
            None => match star {
                Some((star_m, star_n)) => {
                    m = star_m + 1;
                    n = star_n + 1;
                    star = Some((star_m, star_n + 1));
                }
                None => return false,
            },
        }
    }
    mask[m..].iter().all(|&c| c == '*')
}

/// Matches `[...]` at `mask[start]` against `c`; the index after `]` on a match.
fn class_match(mask: &[char], start: usize, c: char) -> Option<usize> {
    let mut i = start + 1;
    // Only `!` negates: Python's fnmatch, which SocketReader's masks were written for, reads
    // `[^x]` as the set of `^` and `x`.
    let negate = mask.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let mut found = false;
    let first = i;
    while let Some(&m) = mask.get(i) {
        if m == ']' && i > first {
            return (found != negate).then_some(i + 1);
        }
        if mask.get(i + 1) == Some(&'-') && mask.get(i + 2).is_some_and(|&e| e != ']') {
            if (m..=mask[i + 2]).contains(&c) {
                found = true;
            }
            i += 3;
        } else {
            if m == c {
                found = true;
            }
            i += 1;
        }
    }
    // No closing bracket: a literal `[`.
    (c == '[').then_some(start + 1)
}

/// Natural order: digit runs compare by value, so `f_2` comes before `f_10`. Names that
/// differ only in leading zeros are ordered by their first such run, fewer zeros first
/// (`f_1` before `f_01`): only equal names compare equal.
#[must_use]
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    // Decides only when the names are otherwise equal; without it `f_1` and `f_01` were
    // equal and their order was the directory's.
    let mut zeros = Ordering::Equal;
    loop {
        match (a.first(), b.first()) {
            (None, None) => return zeros,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if order != Ordering::Equal {
                    return order;
                }
                zeros = zeros.then(da.cmp(&db));
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits.iter().take_while(|&&d| d == b'0').count();
    &digits[start..]
}

/// Whether a name looks like a file still being written by its producer: hidden files,
/// and `.tmp`, `.part`, `.partial`, `.crdownload`, `.filepart`, `~` endings.
#[must_use]
pub fn is_temporary_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.ends_with('~')
        || [
            ".tmp",
            ".part",
            ".partial",
            ".crdownload",
            ".filepart",
            ".swp",
        ]
        .iter()
        .any(|s| lower.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_blocks_traversal() {
        for hostile in [
            "../../x",
            "..",
            "/etc/passwd",
            "..\\..\\x",
            "a/../b",
            "....//x",
        ] {
            let safe = sanitize(hostile, MAX_PART_LEN);
            assert!(
                !safe.contains('/') && !safe.contains('\\') && !safe.contains(".."),
                "{hostile} -> {safe}"
            );
        }
        assert_eq!(sanitize("a b", 64), "a_b");
        assert_eq!(sanitize("ÄBC", 64), "_BC");
        assert_eq!(sanitize(&"x".repeat(100), 64).len(), 64);
    }

    /// `.` is the directory itself: a connection named `.` had `datadir/undeliverable/.`,
    /// the directory shared by every output, for its own undeliverable messages.
    #[test]
    fn sanitize_never_gives_the_directory_itself() {
        assert_eq!(sanitize(".", MAX_PART_LEN), "_");
        assert_eq!(sanitize(".hl7", 1), "_");
        assert_eq!(sanitize(".hl7", MAX_PART_LEN), ".hl7");
        assert_eq!(sanitize("a.", MAX_PART_LEN), "a.");
        // Inside a name it is harmless, and kept as before.
        assert_eq!(sanitize_part(".", MAX_PART_LEN), ".");
        assert_eq!(hl7_name_head(b"MSH|^~\\&|.|F|.|H|||ORU\r"), "._F_._H_ORU");
    }

    #[test]
    fn masks() {
        assert!(mask_matches("*", "anything"));
        assert!(mask_matches("f_?.dat", "f_1.dat"));
        assert!(!mask_matches("f_?.dat", "f_10.dat"));
        assert!(mask_matches("f_[0-9]*.hl7", "f_12.hl7"));
        assert!(!mask_matches("f_[!0-9]*.hl7", "f_12.hl7"));
        // As in Python's fnmatch, `^` is a member of the set, not a negation.
        assert!(mask_matches("f_[^x].hl7", "f_^.hl7"));
        assert!(mask_matches("f_[^x].hl7", "f_x.hl7"));
        assert!(!mask_matches("f_[^x].hl7", "f_1.hl7"));
        assert!(mask_matches("*a*b*", "xxaybz"));
        assert!(!mask_matches("*.hl7", "x.hl"));
    }

    /// SocketReader's `filemask` went through Python's `fnmatch` (`glob`); these verdicts
    /// were recorded from Python 2.7.18's `fnmatch.fnmatchcase`: case matters, `]` first
    /// in a set is a member, only `!` negates, an unclosed `[` and a backslash are literal.
    #[test]
    fn masks_match_as_python_2_7_fnmatch_does() {
        let python: &[(&str, &str, bool)] = &[
            (r"*.hl7", r"a.hl7", true),
            (r"*.hl7", r"A.HL7", false),
            (r"*.hl7", r"a.hl7.tmp", false),
            (r"f_?.dat", r"f_1.dat", true),
            (r"f_?.dat", r"f_10.dat", false),
            (r"f_?.dat", r"f_.dat", false),
            (r"[]a]x", r"]x", true),
            (r"[]a]x", r"ax", true),
            (r"[]a]x", r"bx", false),
            (r"[!]a]x", r"]x", false),
            (r"[!]a]x", r"ax", false),
            (r"[!]a]x", r"bx", true),
            (r"[^x]*", r"^y", true),
            (r"[^x]*", r"xy", true),
            (r"[^x]*", r"b1", false),
            (r"[a-]*", r"-q", true),
            (r"[a-]*", r"ax", true),
            (r"[a-]*", r"b1", false),
            (r"[!a-c]*", r"ax", false),
            (r"[!a-c]*", r"d", true),
            (r"[!a-c]*", r"-q", true),
            (r"[", r"[", true),
            (r"[", r"[x", false),
            (r"[!]", r"[!]", true),
            (r"[!]", r"!", false),
            (r"[]", r"[]", true),
            (r"[]", r"]", false),
            (r"a[b", r"a[b", true),
            (r"a[b", r"ab", false),
            (r"[\]]*", r"\]", true),
            (r"[\]]*", r"]x", false),
            (r"[\]]*", r"\x", false),
            (r"\*", r"\x", true),
            (r"\*", r"*", false),
            (r"*[*]*", r"a*b", true),
            (r"*[*]*", r"ab", false),
            (r"[!!]*", r"!z", false),
            (r"[!!]*", r"ax", true),
            (r"*.[hH][lL]7", r"a.hl7", true),
            (r"*.[hH][lL]7", r"A.HL7", true),
            (r"*.[hH][lL]7", r"a.hm7", false),
            (r"[.]*", r".x", true),
            (r"[.]*", r"x", false),
        ];
        for &(mask, name, expected) in python {
            assert_eq!(mask_matches(mask, name), expected, "{mask} on {name}");
        }
    }

    #[test]
    fn natural() {
        let mut names = vec!["f_10.dat", "f_2.dat", "f_1.dat", "f_01.dat"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["f_1.dat", "f_01.dat", "f_2.dat", "f_10.dat"]);
    }

    /// Names differing only in leading zeros were equal, so a file input taking them in
    /// natural order took them in whatever order the directory listed them.
    #[test]
    fn natural_order_tells_leading_zeros_apart() {
        assert_eq!(natural_cmp("f_1.dat", "f_01.dat"), Ordering::Less);
        assert_eq!(natural_cmp("f_01.dat", "f_1.dat"), Ordering::Greater);
        assert_eq!(natural_cmp("a0", "a00"), Ordering::Less);
        // The first run that differs in zeros decides; any other difference comes first.
        assert_eq!(natural_cmp("01_1", "1_01"), Ordering::Greater);
        assert_eq!(natural_cmp("01_2", "1_1"), Ordering::Greater);
        assert_eq!(natural_cmp("f_01", "f_01"), Ordering::Equal);
        let mut names = vec!["f_01.dat", "f_1.dat"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["f_1.dat", "f_01.dat"]);
    }
}
