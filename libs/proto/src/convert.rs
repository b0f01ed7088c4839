//! Conversions between the wire form of the ingester service and the
//! model's types, in one place for both sides of the call.

use strata_model::{MatchOp, Matcher};

use crate::ingester as pb;

/// Matchers in their protobuf form.
pub fn matchers_to_pb(ms: &[Matcher]) -> Vec<pb::LabelMatcher> {
    ms.iter()
        .map(|m| pb::LabelMatcher {
            r#type: match m.op {
                MatchOp::Equal => pb::MatchType::Equal,
                MatchOp::NotEqual => pb::MatchType::NotEqual,
                MatchOp::RegexMatch => pb::MatchType::RegexMatch,
                MatchOp::RegexNoMatch => pb::MatchType::RegexNoMatch,
            } as i32,
            name: m.name.clone(),
            value: m.value.clone(),
        })
        .collect()
}

/// Matchers from their protobuf form; an unknown type or a regular
/// expression that does not compile is an error naming it.
pub fn matchers_from_pb(ms: &[pb::LabelMatcher]) -> Result<Vec<Matcher>, String> {
    ms.iter()
        .map(|m| {
            let op = match pb::MatchType::try_from(m.r#type) {
                Ok(pb::MatchType::Equal) => MatchOp::Equal,
                Ok(pb::MatchType::NotEqual) => MatchOp::NotEqual,
                Ok(pb::MatchType::RegexMatch) => MatchOp::RegexMatch,
                Ok(pb::MatchType::RegexNoMatch) => MatchOp::RegexNoMatch,
                Err(_) => return Err(format!("unknown matcher type {}", m.r#type)),
            };
            Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_round_trip() {
        let ms = vec![
            Matcher::new(MatchOp::Equal, "__name__", "up").unwrap(),
            Matcher::new(MatchOp::NotEqual, "job", "x").unwrap(),
            Matcher::new(MatchOp::RegexMatch, "pod", "a.*").unwrap(),
            Matcher::new(MatchOp::RegexNoMatch, "zone", "b|c").unwrap(),
        ];
        assert_eq!(matchers_from_pb(&matchers_to_pb(&ms)).unwrap(), ms);
        let mut bad = matchers_to_pb(&ms[..1]);
        bad[0].r#type = 42;
        assert_eq!(
            matchers_from_pb(&bad).unwrap_err(),
            "unknown matcher type 42"
        );
    }
}
