//! Go's reading of PromQL string literals, where it differs from
//! promql-parser's.
//!
//! Prometheus is written in Go, where `"\xff"` is the single byte 0xFF — not
//! valid UTF-8, so not a valid label name. promql-parser turns the same
//! escape into the character U+00FF, which is valid. To answer such queries
//! as Prometheus does, the engine scans the query text for string literals
//! whose Go value is invalid UTF-8 and remembers how promql-parser decoded
//! them; functions that create label names refuse those values.

/// promql-parser's decoding of every string literal in `query` whose Go
/// decoding is not valid UTF-8.
pub(crate) fn invalid_utf8_literals(query: &str) -> Vec<String> {
    let bytes = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'`' => {
                // Raw strings have no escapes; the query text is UTF-8.
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
                i += 1;
            }
            quote @ (b'"' | b'\'') => {
                let (end, parser_view, go_bytes) = scan_quoted(bytes, i + 1, quote);
                if std::str::from_utf8(&go_bytes).is_err() {
                    out.push(parser_view);
                }
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Decodes a quoted literal starting after its opening quote. Returns the
/// index of the closing quote (or the end), promql-parser's view and Go's
/// bytes.
fn scan_quoted(bytes: &[u8], mut i: usize, quote: u8) -> (usize, String, Vec<u8>) {
    let mut view = String::new();
    let mut go = Vec::new();
    let hex = |b: u8| (b as char).to_digit(16);
    while i < bytes.len() && bytes[i] != quote {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            // Copy one UTF-8 character.
            let len = utf8_len(bytes[i]);
            let end = (i + len).min(bytes.len());
            let piece = &bytes[i..end];
            go.extend_from_slice(piece);
            view.push_str(&String::from_utf8_lossy(piece));
            i = end;
            continue;
        }
        let c = bytes[i + 1];
        i += 2;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'\'' | b'"' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            go.push(b);
            view.push(b as char);
            continue;
        }
        match c {
            b'x' => {
                let v = bytes
                    .get(i..i + 2)
                    .and_then(|h| Some(hex(h[0])? * 16 + hex(h[1])?));
                i += 2;
                if let Some(v) = v {
                    go.push(v as u8);
                    view.push(char::from(v as u8));
                }
            }
            b'0'..=b'7' => {
                let v = bytes.get(i..i + 2).and_then(|o| {
                    let d = |b: u8| (b as char).to_digit(8);
                    Some((c - b'0') as u32 * 64 + d(o[0])? * 8 + d(o[1])?)
                });
                i += 2;
                if let Some(v) = v.filter(|v| *v <= 255) {
                    go.push(v as u8);
                    view.push(char::from(v as u8));
                }
            }
            b'u' | b'U' => {
                let n = if c == b'u' { 4 } else { 8 };
                let v = bytes
                    .get(i..i + n)
                    .and_then(|h| h.iter().try_fold(0u32, |acc, b| Some(acc * 16 + hex(*b)?)));
                i += n;
                if let Some(ch) = v.and_then(char::from_u32) {
                    let mut buf = [0u8; 4];
                    go.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    view.push(ch);
                }
            }
            other => {
                go.push(other);
                view.push(other as char);
            }
        }
    }
    (i, view, go)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literals_that_go_reads_as_invalid_utf8() {
        assert_eq!(
            invalid_utf8_literals(r#"label_replace(m, "\xff", "", "src", "(.*)")"#),
            vec!["\u{ff}".to_string()]
        );
        // Two bytes forming valid UTF-8 are fine in Go.
        assert!(invalid_utf8_literals(r#"f("\xc3\xbf")"#).is_empty());
        assert_eq!(
            invalid_utf8_literals(r#"f('\377')"#),
            vec!["\u{ff}".to_string()]
        );
        assert!(invalid_utf8_literals(r#"f("ÿ", `\xff`, "\u00ff") # "\xff""#).is_empty());
        // Unterminated or odd input never panics.
        for q in [r#""\x"#, r#""\xf"#, "\"\\", "'\\u12", "\"é", "\"\\9"] {
            let _ = invalid_utf8_literals(q);
        }
    }
}
