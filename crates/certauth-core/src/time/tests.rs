use super::*;

fn t(tag: u8, s: &str) -> Option<Time> {
    Time::from_der(Tlv {
        tag,
        value: s.as_bytes(),
        raw: s.as_bytes(),
        value_offset: 0,
    })
}

#[test]
fn parses_both_forms() {
    assert_eq!(t(tag::UTC_TIME, "700101000000Z").unwrap().unix_seconds(), 0);
    assert_eq!(
        t(tag::UTC_TIME, "491231235959Z").unwrap().to_string(),
        "2049-12-31T23:59:59Z"
    );
    assert_eq!(
        t(tag::UTC_TIME, "500101000000Z").unwrap().to_string(),
        "1950-01-01T00:00:00Z"
    );
    let g = t(tag::GENERALIZED_TIME, "20260229120000Z");
    assert!(g.is_none(), "2026 is not a leap year");
    let g = t(tag::GENERALIZED_TIME, "20280229120000Z").unwrap();
    assert_eq!(g.to_string(), "2028-02-29T12:00:00Z");
    assert_eq!(g.to_openssl_string(), "Feb 29 12:00:00 2028 GMT");
    let g = t(tag::GENERALIZED_TIME, "99991231235959Z").unwrap();
    assert_eq!(g.to_string(), "9999-12-31T23:59:59Z");
    assert_eq!(
        t(tag::UTC_TIME, "261103080910Z")
            .unwrap()
            .to_openssl_string(),
        "Nov  3 08:09:10 2026 GMT"
    );
}

#[test]
fn refuses_non_der_forms() {
    for (tg, s) in [
        (tag::UTC_TIME, "7001010000Z"),
        (tag::UTC_TIME, "700101000000+0100"),
        (tag::UTC_TIME, "701301000000Z"),
        (tag::UTC_TIME, "700132000000Z"),
        (tag::UTC_TIME, "700101240000Z"),
        (tag::UTC_TIME, "70010100006 Z"),
        (tag::GENERALIZED_TIME, "20260101000000.5Z"),
        (tag::GENERALIZED_TIME, "260101000000Z"),
        (tag::OCTET_STRING, "700101000000Z"),
    ] {
        assert!(t(tg, s).is_none(), "{s}");
    }
}

#[test]
fn rfc3339() {
    let t = Time::parse_rfc3339("2026-11-03T08:09:10Z").unwrap();
    assert_eq!(t.to_string(), "2026-11-03T08:09:10Z");
    assert_eq!(Time::parse_rfc3339("2026-11-03T09:09:10+01:00"), Some(t));
    assert_eq!(Time::parse_rfc3339("2026-11-03t08:09:10.123z"), Some(t));
    assert_eq!(Time::parse_rfc3339("2026-11-03 03:09:10-05:00"), Some(t));
    for bad in [
        "2026-11-03",
        "2026-13-03T08:09:10Z",
        "2026-11-03T08:09:10",
        "2026-02-30T00:00:00Z",
        "x026-11-03T08:09:10Z",
        "2026-11-03T08:09:10.Z",
        "2026-11-03T08:09:10+1:00",
    ] {
        assert!(Time::parse_rfc3339(bad).is_none(), "{bad}");
    }
    assert_eq!(Time::from_unix_seconds(-1).to_unix_time(), None);
}

#[test]
fn civil_round_trip() {
    for secs in [
        -2_208_988_800_i64,
        -1,
        0,
        951_782_400,
        4_102_444_800,
        253_402_300_799,
    ] {
        let time = Time::from_unix_seconds(secs);
        let (y, m, d, hh, mm, ss) = time.to_civil();
        let back = days_from_civil(y, m, d) * 86_400
            + i64::from(hh) * 3600
            + i64::from(mm) * 60
            + i64::from(ss);
        assert_eq!(back, secs);
    }
}
