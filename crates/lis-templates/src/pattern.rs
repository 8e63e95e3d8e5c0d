//! Enough regular expression for JSON Schema `pattern`s in templates: anchors `^` `$`, literals,
//! `\` escapes, `.`, classes `[a-z0-9_]` (with `^` negation) and `\d`, and the quantifiers `?`, `*`,
//! `+`, `{n}`, `{n,}`, `{n,m}`. Unanchored patterns match anywhere, as in JSON Schema. An
//! unsupported pattern never matches, so it shows up as a violation instead of passing silently.

#[derive(Debug, Clone)]
enum Atom {
    Any,
    Char(char),
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Atom {
    fn accepts(&self, c: char) -> bool {
        match self {
            Self::Any => true,
            Self::Char(x) => *x == c,
            Self::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Piece {
    atom: Atom,
    min: usize,
    max: usize,
}

struct Compiled {
    start: bool,
    end: bool,
    pieces: Vec<Piece>,
}

fn compile(pattern: &str) -> Option<Compiled> {
    let mut chars: Vec<char> = pattern.chars().collect();
    let start = chars.first() == Some(&'^');
    if start {
        chars.remove(0);
    }
    let end = chars.last() == Some(&'$') && !(chars.len() >= 2 && chars[chars.len() - 2] == '\\');
    if end {
        chars.pop();
    }
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let atom = match chars[i] {
            '.' => Atom::Any,
            '\\' => {
                i += 1;
                match chars.get(i)? {
                    'd' => Atom::Class {
                        negated: false,
                        ranges: vec![('0', '9')],
                    },
                    c => Atom::Char(*c),
                }
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                while *chars.get(i)? != ']' {
                    let lo = if chars[i] == '\\' {
                        i += 1;
                        *chars.get(i)?
                    } else {
                        chars[i]
                    };
                    if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']')
                    {
                        ranges.push((lo, chars[i + 2]));
                        i += 3;
                    } else {
                        ranges.push((lo, lo));
                        i += 1;
                    }
                }
                Atom::Class { negated, ranges }
            }
            '(' | ')' | '|' | '*' | '+' | '?' | '{' => return None,
            c => Atom::Char(c),
        };
        i += 1;
        let (min, max) = match chars.get(i) {
            Some('?') => (0, 1),
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('{') => {
                let close = chars[i..].iter().position(|c| *c == '}')? + i;
                let body: String = chars[i + 1..close].iter().collect();
                let bounds = match body.split_once(',') {
                    None => {
                        let n = body.parse().ok()?;
                        (n, n)
                    }
                    Some((lo, "")) => (lo.parse().ok()?, usize::MAX),
                    Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
                };
                i = close;
                bounds
            }
            _ => {
                pieces.push(Piece {
                    atom,
                    min: 1,
                    max: 1,
                });
                continue;
            }
        };
        i += 1;
        pieces.push(Piece { atom, min, max });
    }
    Some(Compiled { start, end, pieces })
}

fn match_here(pieces: &[Piece], text: &[char], end: bool) -> bool {
    let Some((piece, rest)) = pieces.split_first() else {
        return !end || text.is_empty();
    };
    let mut count = 0;
    while count < piece.min {
        match text.get(count) {
            Some(c) if piece.atom.accepts(*c) => count += 1,
            _ => return false,
        }
    }
    loop {
        if match_here(rest, &text[count..], end) {
            return true;
        }
        if count >= piece.max || !text.get(count).is_some_and(|c| piece.atom.accepts(*c)) {
            return false;
        }
        count += 1;
    }
}

/// Whether `text` matches `pattern`.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let Some(compiled) = compile(pattern) else {
        return false;
    };
    let chars: Vec<char> = text.chars().collect();
    if compiled.start {
        return match_here(&compiled.pieces, &chars, compiled.end);
    }
    (0..=chars.len()).any(|from| match_here(&compiled.pieces, &chars[from..], compiled.end))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn template_patterns() {
        assert!(matches("^DEV01[0-9]{15}$", "DEV01261000000000999"));
        assert!(!matches("^DEV01[0-9]{15}$", "DEV0126100000000099"));
        assert!(!matches("^DEV01[0-9]{15}$", "DEV012610000000009999"));
        assert!(matches("^[0-9]{2}$", "61"));
        assert!(!matches("^[0-9]{2}$", "6"));
        assert!(!matches("^[0-9]{2}$", "SPECIMEN-GX-001"));
        assert!(matches("^[0-9]{8}$", "19850315"));
        assert!(matches("a+b?c", "xxaacz"));
        assert!(matches("^\\d{2,3}-[^x]$", "123-y"));
        assert!(!matches("^\\d{2,3}-[^x]$", "123-x"));
        assert!(!matches("(a|b)", "a"), "unsupported patterns never match");
    }
}
