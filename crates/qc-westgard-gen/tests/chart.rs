//! Levey-Jennings charts: edge cases of the points and of the text.

use qc_westgard_gen::{ChartSpec, Evaluation, Evaluator, RuleSet, Status, levey_jennings_svg};

fn spec(title: &str, mean: f64, sd: f64) -> ChartSpec {
    ChartSpec {
        title: title.into(),
        mean,
        sd,
        unit: "mg/dL".into(),
    }
}

/// Points drawn (the small filled circles), and violation rings.
fn counts(svg: &str) -> (usize, usize) {
    (
        svg.matches(r#" r="4" "#).count(),
        svg.matches(r#"class="violation""#).count(),
    )
}

/// Characters XML 1.0 does not allow anywhere in a document, escaped or not.
fn xml_forbidden(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

#[test]
fn one_point_all_equal_and_no_points() {
    let mut e = Evaluator::new(100.0, 5.0, RuleSet::openelis()).unwrap();
    let one = e.evaluate_all(&[103.0]).unwrap();
    let svg = levey_jennings_svg(&spec("GLU", 100.0, 5.0), &one);
    assert_eq!(counts(&svg), (1, 0));
    assert!(svg.contains(r#"<circle cx="490.0""#), "{svg}");
    assert!(!svg.contains("<polyline"));

    let mut e = Evaluator::new(100.0, 5.0, RuleSet::openelis()).unwrap();
    let equal = e.evaluate_all(&[100.0; 5]).unwrap();
    let svg = levey_jennings_svg(&spec("GLU", 100.0, 5.0), &equal);
    assert_eq!(counts(&svg), (5, 0));
    assert!(!svg.contains("NaN"));

    let svg = levey_jennings_svg(&spec("GLU", 100.0, 5.0), &[]);
    assert_eq!(counts(&svg), (0, 0));
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
}

#[test]
fn an_infinite_z_is_drawn_at_the_edge_and_a_nan_is_left_out() {
    // A finite value can have an infinite z (here 1e10 / 1e-300): a 1-3s rejection that must
    // show on the chart, clamped to its edge, not vanish.
    let mut e = Evaluator::new(0.0, 1e-300, RuleSet::openelis()).unwrap();
    let mut points = e.evaluate_all(&[0.0, 1e10, -1e10]).unwrap();
    assert_eq!(points[1].z, f64::INFINITY);
    assert_eq!(points[1].status, Status::Rejected);
    points.push(Evaluation {
        value: f64::NAN,
        z: f64::NAN,
        violations: Vec::new(),
        status: Status::Accepted,
    });
    let svg = levey_jennings_svg(&spec("big", 0.0, 1e-300), &points);
    assert_eq!(counts(&svg), (3, 2), "{svg}");
    // Top and bottom of the plot (TOP = 50, plot height 320).
    assert!(svg.contains(r#"cy="50.0" r="4""#), "{svg}");
    assert!(svg.contains(r#"cy="370.0" r="4""#), "{svg}");
    assert!(!svg.contains("NaN,") && !svg.contains(r#""NaN""#));
}

#[test]
fn text_is_escaped_and_characters_xml_forbids_are_replaced() {
    let mut e = Evaluator::new(100.0, 5.0, RuleSet::openelis()).unwrap();
    let points = e.evaluate_all(&[101.0, 116.0]).unwrap();
    let mut chart = spec("LOT<1> & \"N\"\u{1}\u{1b}[0m\u{FFFF}", 100.0, 5.0);
    chart.unit = "µmol/L\u{0}".into();
    let svg = levey_jennings_svg(&chart, &points);
    assert!(!svg.chars().any(xml_forbidden), "{svg:?}");
    assert!(svg.contains("LOT&lt;1&gt; &amp; &quot;N&quot;"), "{svg}");
    assert!(svg.contains("µmol/L"));
}

#[test]
fn sd_lines_are_labelled_with_enough_decimals_to_tell_them_apart() {
    // A control at 0.0005 with SD 0.00002: at 4 decimals five of the seven lines read 0.0005.
    let mut e = Evaluator::new(0.0005, 0.00002, RuleSet::openelis()).unwrap();
    let points = e.evaluate_all(&[0.00051]).unwrap();
    let svg = levey_jennings_svg(&spec("small", 0.0005, 0.00002), &points);
    for label in [
        "-3SD 0.00044 mg/dL",
        "-2SD 0.00046 mg/dL",
        "-1SD 0.00048 mg/dL",
        "mean 0.0005 mg/dL",
        "+1SD 0.00052 mg/dL",
        "+2SD 0.00054 mg/dL",
        "+3SD 0.00056 mg/dL",
    ] {
        assert!(svg.contains(label), "{label}: {svg}");
    }
    // The usual case keeps its short labels.
    let svg = levey_jennings_svg(&spec("GLU", 100.0, 5.0), &points);
    assert!(
        svg.contains("-3SD 85 mg/dL") && svg.contains("mean 100 mg/dL"),
        "{svg}"
    );
    // A vanishing SD around 0 prints no "-0".
    let svg = levey_jennings_svg(&spec("tiny", 0.0, 1e-300), &points);
    assert!(!svg.contains("SD -0 "), "{svg}");
}
