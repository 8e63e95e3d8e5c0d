//! Levey-Jennings charts as SVG.

use std::fmt::Write as _;

use crate::{Evaluation, Status};

/// Title, mean, SD and unit of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    /// Shown above the plot (e.g. `GLU LOT-GLU-N NORMAL`).
    pub title: String,
    /// Target mean of the control.
    pub mean: f64,
    /// SD of the control.
    pub sd: f64,
    /// Unit shown on the axis labels (may be empty).
    pub unit: String,
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 50.0;

/// `text` as XML character data or attribute value: markup characters escaped, and characters
/// XML 1.0 forbids even as references (controls other than tab, LF and CR; U+FFFE, U+FFFF)
/// replaced by U+FFFD, so that a title from the command line cannot make the file unreadable.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Draws a Levey-Jennings chart: one point per evaluation (oldest left), horizontal lines at the mean
/// and ±1, ±2, ±3 SD (labelled with their values, to two significant digits of the SD or 4 decimals,
/// whichever is finer), points joined in run order, warnings circled in orange and rejections in red
/// with the violated rules written next to them (and in a tooltip). The y axis shows at least ±4 SD
/// and at most ±50 SD; points further out (an infinite z included) are drawn at its edge, points
/// whose z is NaN are left out.
///
/// ```
/// use qc_westgard_gen::{levey_jennings_svg, ChartSpec, Evaluator, RuleSet};
/// let mut evaluator = Evaluator::new(100.0, 5.0, RuleSet::openelis()).unwrap();
/// let points = evaluator.evaluate_all(&[101.0, 98.0, 116.0]).unwrap();
/// let spec = ChartSpec { title: "GLU".into(), mean: 100.0, sd: 5.0, unit: "mg/dL".into() };
/// let svg = levey_jennings_svg(&spec, &points);
/// assert!(svg.starts_with("<svg") && svg.contains("1-3s"));
/// ```
pub fn levey_jennings_svg(spec: &ChartSpec, points: &[Evaluation]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // The y axis is in SD units; it always shows ±4 SD and widens for values further out.
    let finite_z = points.iter().map(|p| p.z.abs()).filter(|z| z.is_finite());
    let z_max = finite_z.fold(4.0_f64, f64::max).ceil().min(50.0);
    let y_of = |z: f64| TOP + plot_h / 2.0 - z.clamp(-z_max, z_max) / z_max * (plot_h / 2.0);
    let n = points.len().max(1);
    let x_of = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<title>{title}</title>
<rect width="100%" height="100%" fill="white"/>
<text x="{cx}" y="25" text-anchor="middle" font-size="16">{title}</text>
"##,
        title = escape(&spec.title),
        cx = WIDTH / 2.0,
    );
    let unit = if spec.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", escape(&spec.unit))
    };
    // Enough decimals for two significant digits of the SD, so that the seven lines of a control
    // at 0.0005 ± 0.00002 do not all read 0.0005; at least 4, at most 12.
    let label_decimals = crate::decimals_for_sd(spec.sd, 4);
    for k in -3i32..=3 {
        let (colour, dash, label) = match k.abs() {
            0 => ("#2a7", "", "mean".to_owned()),
            1 => ("#9c9", " stroke-dasharray=\"4 4\"", format!("{k:+}SD")),
            2 => ("#e90", " stroke-dasharray=\"6 3\"", format!("{k:+}SD")),
            _ => ("#d22", " stroke-dasharray=\"8 2\"", format!("{k:+}SD")),
        };
        let y = y_of(f64::from(k));
        let value = spec.mean + f64::from(k) * spec.sd;
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="{colour}"{dash}/><text x="{lx}" y="{ty:.1}" text-anchor="end">{label} {value}{unit}</text>"#,
            x2 = WIDTH - RIGHT,
            lx = LEFT - 6.0,
            ty = y + 4.0,
            // + 0.0: a label that rounds to -0 reads 0.
            value = crate::round_to(value, label_decimals) + 0.0,
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{cx}" y="{y}" text-anchor="middle">run (oldest left), n = {count}</text>"#,
        cx = LEFT + plot_w / 2.0,
        y = HEIGHT - 15.0,
        count = points.len(),
    );

    // A NaN z has no place on the chart. An infinite one (a finite value over a tiny SD) is a
    // real 1-3s rejection: it is drawn clamped to the edge like any z beyond the axis.
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.z.is_nan())
        .map(|(i, p)| format!("{:.1},{:.1}", x_of(i), y_of(p.z)))
        .collect();
    if path.len() > 1 {
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#357" stroke-width="1.5"/>"##,
            path.join(" ")
        );
    }
    for (i, p) in points.iter().enumerate().filter(|(_, p)| !p.z.is_nan()) {
        let (x, y) = (x_of(i), y_of(p.z));
        let rules = p.violation_names().join(" ");
        let tip = format!(
            "run {}: {} (z {}) {} {}",
            i + 1,
            p.value,
            p.z,
            p.status.as_str(),
            rules
        );
        let (fill, ring) = match p.status {
            Status::Accepted => ("#357", None),
            Status::Warning => ("#e90", Some("#e90")),
            Status::Rejected => ("#d22", Some("#d22")),
        };
        let _ = writeln!(
            svg,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{fill}"><title>{}</title></circle>"#,
            escape(tip.trim_end())
        );
        if let Some(ring) = ring {
            let _ = writeln!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="8" fill="none" stroke="{ring}" stroke-width="2" class="violation"/><text x="{x:.1}" y="{ty:.1}" text-anchor="middle" fill="{ring}" font-size="10">{}</text>"#,
                escape(&rules),
                ty = if p.z >= 0.0 { y - 12.0 } else { y + 20.0 },
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
