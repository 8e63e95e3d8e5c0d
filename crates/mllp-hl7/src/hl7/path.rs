//! `SEG-n.c` paths such as `PID-5.1` or `OBX(2)-5`.

use std::fmt;
use std::str::FromStr;

use crate::error::PathError;
use crate::fmt_bytes::Escaped;

/// A location in a message: `SEG[(k)][-field[(rep)][.component[.subcomponent]]]`.
///
/// `k` picks the k-th segment with that id and `rep` a field repetition (both 1-based,
/// default 1; `[k]` works as well as `(k)`). Examples: `MSH-9.2`, `PID-3(2).1`,
/// `OBX(3)-5`, `PID-11.1.1`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Path {
    /// Segment id.
    pub segment: [u8; 3],
    /// Which occurrence of the segment (1-based).
    pub occurrence: usize,
    /// Field number; `None` addresses the whole segment.
    pub field: Option<usize>,
    /// Field repetition (1-based).
    pub repetition: usize,
    /// Component number.
    pub component: Option<usize>,
    /// Subcomponent number.
    pub subcomponent: Option<usize>,
}

impl FromStr for Path {
    type Err = PathError;

    fn from_str(path: &str) -> Result<Self, PathError> {
        let owned = || path.to_owned();
        let bytes = path.as_bytes();
        let segment: [u8; 3] = bytes
            .get(..3)
            .and_then(|id| id.try_into().ok())
            // Upper case only: HL7 segment ids are, and `obx-5` would otherwise find
            // nothing and look like an absent field.
            .filter(|id: &[u8; 3]| {
                id.iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            })
            .ok_or_else(|| PathError::BadSegment { path: owned() })?;
        let mut rest = &path[3..];
        let occurrence = take_index(&mut rest, path, "segment occurrence")?.unwrap_or(1);
        let mut field = None;
        let mut repetition = 1;
        let mut component = None;
        let mut subcomponent = None;
        if let Some(after) = rest.strip_prefix('-') {
            rest = after;
            field = Some(take_number(&mut rest, path, "field")?);
            repetition = take_index(&mut rest, path, "repetition")?.unwrap_or(1);
            if let Some(after) = rest.strip_prefix('.') {
                rest = after;
                component = Some(take_number(&mut rest, path, "component")?);
                if let Some(after) = rest.strip_prefix('.') {
                    rest = after;
                    subcomponent = Some(take_number(&mut rest, path, "subcomponent")?);
                }
            }
        }
        if !rest.is_empty() {
            return Err(PathError::Syntax {
                path: owned(),
                rest: rest.to_owned(),
            });
        }
        Ok(Self {
            segment,
            occurrence,
            field,
            repetition,
            component,
            subcomponent,
        })
    }
}

fn take_number(rest: &mut &str, path: &str, what: &'static str) -> Result<usize, PathError> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let number = rest[..digits]
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| PathError::BadNumber {
            path: path.to_owned(),
            what,
        })?;
    *rest = &rest[digits..];
    Ok(number)
}

/// An optional `(n)` or `[n]`.
fn take_index(rest: &mut &str, path: &str, what: &'static str) -> Result<Option<usize>, PathError> {
    let close = match rest.as_bytes().first() {
        Some(b'(') => ')',
        Some(b'[') => ']',
        _ => return Ok(None),
    };
    *rest = &rest[1..];
    let number = take_number(rest, path, what)?;
    *rest = rest.strip_prefix(close).ok_or_else(|| PathError::Syntax {
        path: path.to_owned(),
        rest: (*rest).to_owned(),
    })?;
    Ok(Some(number))
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Path")
            .field("segment", &Escaped(&self.segment))
            .field("occurrence", &self.occurrence)
            .field("field", &self.field)
            .field("repetition", &self.repetition)
            .field("component", &self.component)
            .field("subcomponent", &self.subcomponent)
            .finish()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.segment))?;
        if self.occurrence != 1 {
            write!(f, "({})", self.occurrence)?;
        }
        if let Some(field) = self.field {
            write!(f, "-{field}")?;
            if self.repetition != 1 {
                write!(f, "({})", self.repetition)?;
            }
        }
        if let Some(component) = self.component {
            write!(f, ".{component}")?;
        }
        if let Some(subcomponent) = self.subcomponent {
            write!(f, ".{subcomponent}")?;
        }
        Ok(())
    }
}
