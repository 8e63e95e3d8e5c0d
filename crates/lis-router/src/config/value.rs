//! Parsers for SocketReader option values (Python-flavoured literals).

use std::time::Duration;

/// Removes one pair of matching surrounding quotes.
pub(crate) fn unquote(raw: &str) -> &str {
    let raw = raw.trim();
    for quote in ['"', '\''] {
        if raw.len() >= 2 && raw.starts_with(quote) && raw.ends_with(quote) {
            return &raw[1..raw.len() - 1];
        }
    }
    raw
}

/// Python ConfigParser's `getboolean` words.
pub(crate) fn boolean(raw: &str) -> Result<bool, String> {
    match unquote(raw).to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        other => Err(format!(
            "`{other}` is not a boolean; allowed: True, False (also yes/no, on/off, 1/0)"
        )),
    }
}

/// An integer within `min..=max`.
pub(crate) fn integer(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    let text = unquote(raw);
    let value: u64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number; allowed: {min}..{max}"))?;
    if value < min || value > max {
        return Err(format!("{value} is out of range; allowed: {min}..{max}"));
    }
    Ok(value)
}

/// Seconds (fractions allowed) within `min..=max`.
pub(crate) fn seconds(raw: &str, min: f64, max: f64) -> Result<Duration, String> {
    let text = unquote(raw);
    let value: f64 = text
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("`{text}` is not a number of seconds; allowed: {min}..{max}"))?;
    if value < min || value > max {
        return Err(format!(
            "{value} s is out of range; allowed: {min}..{max} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

/// A delimiter: `chr(0x0b)`, `chr(11)`, `"text"`, `'text'`, `0x0b`, or several joined
/// with `+` (`chr(28) + chr(13)`).
pub(crate) fn delimiter(raw: &str) -> Result<Vec<u8>, String> {
    let out = delimiter_or_none(raw)?;
    if out.is_empty() {
        return Err(format!("the delimiter is empty; {DELIMITERS_ALLOWED}"));
    }
    Ok(out)
}

/// A frame trailer (`eob`): a [`delimiter`], or nothing when written `''` or `""` (frames
/// then end with the end-of-data delimiter alone).
pub(crate) fn trailer(raw: &str) -> Result<Vec<u8>, String> {
    if raw.trim().is_empty() {
        return Err(format!(
            "no value; write '' for no trailer; {DELIMITERS_ALLOWED}"
        ));
    }
    delimiter_or_none(raw)
}

const DELIMITERS_ALLOWED: &str =
    "allowed: chr(0x0b), chr(11), a quoted string such as \"END\", or parts joined with +";

fn delimiter_or_none(raw: &str) -> Result<Vec<u8>, String> {
    const ALLOWED: &str = DELIMITERS_ALLOWED;
    let mut out = Vec::new();
    for part in split_top(raw.trim(), '+') {
        let part = part.trim();
        // Python's eval, which read these, takes blanks between `chr` and `(` too.
        if let Some(inner) = part
            .strip_prefix("chr")
            .and_then(|p| p.trim_start().strip_prefix('('))
            .and_then(|p| p.strip_suffix(')'))
        {
            out.push(byte_number(inner.trim()).ok_or_else(|| {
                format!(
                    "`{part}`: chr() needs a number 0..255 (decimal, 0x hex, or octal with a \
                     leading 0 as in Python 2); {ALLOWED}"
                )
            })?);
        } else if part.starts_with(['"', '\'']) {
            out.extend_from_slice(&string_literals(part)?);
        } else if let Some(byte) = part
            .strip_prefix("0x")
            .or_else(|| part.strip_prefix("0X"))
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
        } else {
            return Err(format!("`{part}` is not a delimiter; {ALLOWED}"));
        }
    }
    Ok(out)
}

/// A Python 2 integer literal 0..255: decimal, `0x` hex, `0o` or `0b`, and, as in Python 2,
/// octal when it starts with `0` (`chr(013)` is VT, not CR).
fn byte_number(text: &str) -> Option<u8> {
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if let Some(octal) = text.strip_prefix("0o").or_else(|| text.strip_prefix("0O")) {
            (octal, 8)
        } else if let Some(binary) = text.strip_prefix("0b").or_else(|| text.strip_prefix("0B")) {
            (binary, 2)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    // from_str_radix takes a sign; Python's chr() arguments here never have one.
    if digits.starts_with(['+', '-']) {
        return None;
    }
    u8::from_str_radix(digits, radix).ok()
}

/// One or more adjacent Python string literals (`'a' "b"` is `ab`, as in Python), their
/// escapes resolved.
fn string_literals(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while let Some(quote) = rest.chars().next() {
        if quote != '"' && quote != '\'' {
            return Err(format!(
                "`{text}`: unexpected `{rest}` after a quoted string"
            ));
        }
        let body = &rest[1..];
        let end = closing_quote(body, quote)
            .ok_or_else(|| format!("`{text}`: the quoted string is not closed"))?;
        out.extend_from_slice(&unescape_python(&body[..end])?);
        rest = body[end + 1..].trim_start();
    }
    Ok(out)
}

/// Python 2 byte-string escapes: `\xhh`, octal `\ooo`, `\a \b \f \n \r \t \v`, `\\`,
/// `\'`, `\"`; as in Python, a backslash before any other character stays as written.
fn unescape_python(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let escape = bytes.get(i + 1).copied();
        match escape {
            Some(b'x') => {
                // Two hex digits, as Python wants: from_str_radix alone would also take a
                // sign (`\x+b`).
                let hex = text
                    .get(i + 2..i + 4)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad \\x escape in \"{text}\""))?;
                out.push(hex);
                i += 4;
                continue;
            }
            Some(b'0'..=b'7') => {
                // Up to three octal digits; Python keeps the low eight bits.
                let digits = bytes[i + 1..]
                    .iter()
                    .take(3)
                    .take_while(|b| (b'0'..=b'7').contains(b))
                    .count();
                let value = bytes[i + 1..i + 1 + digits]
                    .iter()
                    .fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                out.push((value & 0xff) as u8);
                i += 1 + digits;
                continue;
            }
            Some(b'a') => out.push(0x07),
            Some(b'b') => out.push(0x08),
            Some(b'f') => out.push(0x0c),
            Some(b'v') => out.push(0x0b),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b @ (b'\\' | b'\'' | b'"')) => out.push(b),
            // A trailing backslash cannot occur: it would have escaped the closing quote.
            Some(_) | None => {
                out.push(b'\\');
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Ok(out)
}

/// A Python dict literal of string keys: `{"a": "x", 'b': True, "c": 3}`. Values are
/// returned as written (quotes removed).
pub(crate) fn python_dict(raw: &str) -> Result<Vec<(String, String)>, String> {
    const SHAPE: &str = "expected a Python dict such as {\"option\": True, \"other\": \"value\"}";
    let text = raw.trim();
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| format!("`{text}`: {SHAPE}"))?;
    let mut entries = Vec::new();
    for item in split_top(inner, ',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let parts = split_top(item, ':');
        let [key, value] = parts.as_slice() else {
            return Err(format!("`{item}`: {SHAPE}"));
        };
        let key = key.trim();
        if !(key.len() >= 2
            && ((key.starts_with('"') && key.ends_with('"'))
                || (key.starts_with('\'') && key.ends_with('\''))))
        {
            return Err(format!("debug key `{key}` must be quoted; {SHAPE}"));
        }
        entries.push((unquote(key).to_owned(), unquote(value).to_owned()));
    }
    Ok(entries)
}

/// Splits on `sep` outside quotes and outside brackets: a Python value such as
/// `[1, 2]`, `(1, 2)` or `{"a": 1}` inside a dict is one value, as Python's eval reads it.
fn split_top(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut depth = 0usize;
    while let Some(c) = text[i..].chars().next() {
        if c == '"' || c == '\'' {
            // Skip the whole literal; an unclosed one runs to the end.
            let body = i + 1;
            i = closing_quote(&text[body..], c).map_or(text.len(), |end| body + end + 1);
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    parts.push(&text[start..]);
    parts
}

/// Where `quote` closes a string literal whose text starts `body`: the first such quote
/// not escaped by a backslash.
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == quote => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_in_every_spelling() {
        assert_eq!(delimiter("chr(0x0b)").unwrap(), [0x0b]);
        assert_eq!(delimiter("chr(11)").unwrap(), [0x0b]);
        assert_eq!(delimiter("0x1c").unwrap(), [0x1c]);
        assert_eq!(delimiter("\"START-BLOCK\"").unwrap(), b"START-BLOCK");
        assert_eq!(delimiter("'\\x1c\\r'").unwrap(), [0x1c, 0x0d]);
        assert_eq!(delimiter("chr(28) + chr(13)").unwrap(), [0x1c, 0x0d]);
        // Python's other escapes, and adjacent literals joined as Python joins them.
        assert_eq!(delimiter("'\\v'").unwrap(), [0x0b]);
        assert_eq!(delimiter("'\\013'").unwrap(), [0x0b]);
        assert_eq!(delimiter("\"\\34\\15\"").unwrap(), [0x1c, 0x0d]);
        assert_eq!(delimiter("'\\0'").unwrap(), [0]);
        assert_eq!(delimiter("'\\a\\b\\f'").unwrap(), [7, 8, 12]);
        assert_eq!(delimiter("\"ab\" 'cd'").unwrap(), b"abcd");
        assert_eq!(delimiter("'a\\'b'").unwrap(), b"a'b");
        assert_eq!(delimiter("'\\'' + chr(13)").unwrap(), b"'\r");
        assert_eq!(delimiter("\"a\\\"+\" + chr(13)").unwrap(), b"a\"+\r");
        assert_eq!(delimiter("'\\q'").unwrap(), b"\\q");
        assert_eq!(trailer("''").unwrap(), b"");
        assert_eq!(trailer("chr(13)").unwrap(), [0x0d]);
        assert!(trailer("").is_err());
        assert!(delimiter("''").is_err());
        assert!(delimiter("'ab' cd").is_err());
        assert!(delimiter("'ab").is_err());
        assert!(delimiter("chr(300)").is_err());
        // Python 2 integer literals: a leading 0 is octal, so chr(013) is VT, not CR.
        assert_eq!(delimiter("chr(013)").unwrap(), [0x0b]);
        assert_eq!(delimiter("chr(034) + chr(015)").unwrap(), [0x1c, 0x0d]);
        assert_eq!(delimiter("chr(0o13)").unwrap(), [0x0b]);
        assert_eq!(delimiter("chr(0b1011)").unwrap(), [0x0b]);
        assert_eq!(delimiter("chr(0)").unwrap(), [0]);
        // Python's eval takes blanks around the call's parts.
        assert_eq!(delimiter("chr (11)").unwrap(), [0x0b]);
        assert_eq!(delimiter("chr\t( 0x1c ) + chr (13)").unwrap(), [0x1c, 0x0d]);
        assert!(delimiter("chrx(11)").is_err());
        assert!(delimiter("chr(08)").is_err());
        assert!(delimiter("chr(+11)").is_err());
        // Python 2: "invalid \x escape"; it read as 0x0b.
        assert!(delimiter("'\\x+b'").is_err());
        assert!(delimiter("'\\x-1'").is_err());
        assert!(delimiter("0x+b").is_err());
        assert!(delimiter("START").is_err());
        assert!(delimiter("\"\"").is_err());
    }

    #[test]
    fn python_dicts() {
        let dict = python_dict(r#"{"logcontent": True, 'x': "a:b, c"}"#).unwrap();
        assert_eq!(
            dict,
            [
                ("logcontent".to_owned(), "True".to_owned()),
                ("x".to_owned(), "a:b, c".to_owned())
            ]
        );
        assert!(python_dict("{}").unwrap().is_empty());
        // Python values with commas or colons of their own are one value each.
        let dict =
            python_dict(r#"{"ports": [1, 2], "pair": (3, 4), "sub": {"a": 1}, "logcontent": 1}"#)
                .unwrap();
        assert_eq!(
            dict,
            [
                ("ports".to_owned(), "[1, 2]".to_owned()),
                ("pair".to_owned(), "(3, 4)".to_owned()),
                ("sub".to_owned(), "{\"a\": 1}".to_owned()),
                ("logcontent".to_owned(), "1".to_owned())
            ]
        );
        assert!(python_dict("logcontent=True").is_err());
        assert!(python_dict("{logcontent: True}").is_err());
    }

    #[test]
    fn booleans_and_numbers() {
        assert!(boolean("True").unwrap());
        assert!(!boolean("\"false\"").unwrap());
        assert!(boolean("maybe").is_err());
        assert_eq!(integer("50", 1, 1000).unwrap(), 50);
        assert!(integer("0", 1, 1000).is_err());
        assert_eq!(
            seconds("0.5", 0.0, 10.0).unwrap(),
            Duration::from_millis(500)
        );
    }
}
