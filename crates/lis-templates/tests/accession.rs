//! SiteYearNum accessions.

use lis_templates::{
    AccessionError, AccessionMinter, GenerateOptions, Lane, Output, TemplateSet, generate,
};

#[test]
fn format_prefix_year_lane_sequence() {
    let minter = AccessionMinter::with("DEV01", 27).unwrap();
    let a = minter.mint(Lane::parse("43", "lane").unwrap()).unwrap();
    assert_eq!(a, "DEV01274300000000001");
    assert_eq!(a.len(), 20);
    let other = AccessionMinter::with("SITE9", 31).unwrap();
    assert_eq!(other.mint(Lane::FILE).unwrap(), "SITE9319900000000001");
}

#[test]
fn default_prefix_and_current_year() {
    use chrono::Datelike;
    let minter = AccessionMinter::new();
    assert_eq!(minter.prefix(), "DEV01");
    let year = (chrono::Local::now().year() % 100) as u8;
    assert_eq!(minter.year(), year);
    assert!(
        minter
            .mint(Lane::DEFAULT)
            .unwrap()
            .starts_with(&format!("DEV01{year:02}00"))
    );
}

#[test]
fn one_counter_per_lane_shared_by_all_protocols() {
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let options = GenerateOptions {
        seed: Some(1),
        ..GenerateOptions::default()
    };
    // genexpert (HL7) and genexpert_astm (ASTM) both use lane 10.
    let Output::Hl7(hl7) =
        generate(set.get("genexpert").unwrap(), &minter, &options, false).unwrap()
    else {
        panic!()
    };
    let Output::Astm(astm) =
        generate(set.get("genexpert_astm").unwrap(), &minter, &options, false).unwrap()
    else {
        panic!()
    };
    assert!(hl7.segments[2].contains("DEV01261000000000001"));
    assert!(astm[0].records[2].contains("DEV01261000000000002"));
    // Another lane starts at 1.
    assert_eq!(
        minter.mint(Lane::parse("11", "lane").unwrap()).unwrap(),
        "DEV01261100000000001"
    );
}

#[test]
fn invalid_lanes_and_overrides_are_clear_errors() {
    for bad in ["", "1", "123", "PLACER-INVALID", "1a", "٣٣"] {
        let e = Lane::parse(bad, "testSample.id").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "testSample.id must be a 2-digit lane code used to mint SiteYearNum accessions; got: {bad:?}"
            )
        );
    }
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    assert!(minter.validate("DEV01264300000000001", "sample_id").is_ok());
    let cases = [
        ("S001-BAD", "length 8 instead of 20"),
        ("XXX01264300000000001", "does not start with DEV01"),
        ("DEV0126430000000000A", "not all digits"),
    ];
    for (value, reason) in cases {
        let e = minter.validate(value, "sample_id").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("sample_id must be a valid SiteYearNum accession (DEV01 + 15 digits, total 20 chars)"), "{text}");
        assert!(text.contains(reason), "{text}");
        assert!(matches!(e, AccessionError::InvalidAccession { .. }));
    }
    assert!(AccessionMinter::with("", 26).is_err());
    assert!(AccessionMinter::with("DEV 01", 26).is_err());
    assert!(AccessionMinter::with("DEV01", 100).is_err());
}

#[test]
fn a_year_over_99_is_blamed_on_the_year_not_the_prefix() {
    // `render --year 123` used to answer `invalid site prefix "DEV01"`.
    let e = AccessionMinter::with("DEV01", 123).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid year 123: use the last two digits of the year, 0 to 99"
    );
    let e = AccessionMinter::with("DEV 01", 26).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid site prefix \"DEV 01\": use 1 to 10 ASCII letters or digits"
    );
}

#[test]
fn generation_rejects_a_bad_override_and_uses_a_good_one() {
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let bad = GenerateOptions {
        sample_id: Some("S001".into()),
        ..GenerateOptions::default()
    };
    let e = generate(set.get("mindray_bc5380").unwrap(), &minter, &bad, false).unwrap_err();
    assert!(e.to_string().contains("valid SiteYearNum accession"), "{e}");
    let good = GenerateOptions {
        sample_id: Some("DEV01264099999999999".into()),
        seed: Some(1),
        ..GenerateOptions::default()
    };
    let Output::Hl7(m) =
        generate(set.get("mindray_bc5380").unwrap(), &minter, &good, false).unwrap()
    else {
        panic!()
    };
    assert!(m.segments[3].contains("DEV01264099999999999"));
}

#[test]
fn concurrent_minting_never_repeats() {
    let minter = std::sync::Arc::new(AccessionMinter::with("DEV01", 26).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = minter.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|_| m.mint(Lane::DEFAULT).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 2000);
}
