//! Moves the images that vendored CSS and JS carry as `data:` URLs into files
//! of their own, so that the browser loads them from Quper under
//! `img-src 'self'` (a `data:` image is refused by `default-src 'self'`).
//! Also the content hash that names every versioned file.

use base64::Engine as _;

/// An image taken out of a `data:` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    /// File name, `{stem}-{hash}.{ext}`.
    pub file: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Replaces every `url(data:image/...)` in `text` (quoted or not) by
/// `url("{url_prefix}{file}")` and returns the new text with the images, each
/// distinct image once. A `data:` URL of any other kind, or one that does not
/// decode, is left as it is.
pub(crate) fn extract_data_images(text: &str, url_prefix: &str, stem: &str) -> (String, Vec<Image>) {
    let mut out = String::with_capacity(text.len());
    let mut images: Vec<Image> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("url(") {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let inside = &from["url(".len()..];
        match data_url_token(inside).and_then(|(raw, quote, len)| decode_image(raw, quote).map(|img| (img, len))) {
            Some(((content_type, ext, bytes), len)) => {
                let file = format!("{stem}-{}.{ext}", short_hash(&bytes));
                out.push_str("url(\"");
                out.push_str(url_prefix);
                out.push_str(&file);
                out.push_str("\")");
                if !images.iter().any(|i| i.file == file) {
                    images.push(Image {
                        file,
                        content_type,
                        bytes,
                    });
                }
                rest = &inside[len..];
            }
            None => {
                out.push_str("url(");
                rest = inside;
            }
        }
    }
    out.push_str(rest);
    (out, images)
}

/// After `url(`: a `data:` URL's raw text, its quote (if any), and how many
/// bytes up to and including the closing `)` it spans.
fn data_url_token(s: &str) -> Option<(&str, Option<u8>, usize)> {
    let bytes = s.as_bytes();
    let quote = match bytes.first()? {
        q @ (b'"' | b'\'') => Some(*q),
        _ => None,
    };
    let start = usize::from(quote.is_some());
    if !s[start..].starts_with("data:") {
        return None;
    }
    let end = match quote {
        Some(q) => {
            let mut i = start;
            loop {
                match *bytes.get(i)? {
                    b'\\' => i += 2,
                    b if b == q => break i,
                    _ => i += 1,
                }
            }
        }
        None => s.find(')')?,
    };
    let close = end + usize::from(quote.is_some());
    (bytes.get(close) == Some(&b')')).then_some((&s[start..end], quote, close + 1))
}

/// The content type, file extension and bytes of an image `data:` URL.
fn decode_image(raw: &str, quote: Option<u8>) -> Option<(&'static str, &'static str, Vec<u8>)> {
    let raw = if quote.is_some() {
        css_unescape(raw)
    } else {
        raw.to_owned()
    };
    let (meta, payload) = raw.strip_prefix("data:")?.split_once(',')?;
    let mime = meta.split(';').next()?.trim().to_ascii_lowercase();
    let (content_type, ext) = match mime.as_str() {
        "image/svg+xml" => ("image/svg+xml", "svg"),
        "image/png" => ("image/png", "png"),
        "image/jpeg" => ("image/jpeg", "jpg"),
        "image/gif" => ("image/gif", "gif"),
        "image/webp" => ("image/webp", "webp"),
        _ => return None,
    };
    let bytes = if meta.ends_with(";base64") {
        base64::engine::general_purpose::STANDARD.decode(payload.trim()).ok()?
    } else {
        percent_decode(payload)?
    };
    Some((content_type, ext, bytes))
}

/// Undoes CSS escapes in a quoted string: `\"` is `"`, `\26 ` is `&`.
fn css_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let mut hex = String::new();
        while hex.len() < 6 && chars.peek().is_some_and(char::is_ascii_hexdigit) {
            hex.extend(chars.next());
        }
        if hex.is_empty() {
            // `\` before a newline continues the string; before anything else it
            // stands for that character.
            match chars.next() {
                Some('\n') | None => {}
                Some(other) => out.push(other),
            }
        } else {
            if chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                chars.next();
            }
            let code = u32::from_str_radix(&hex, 16).unwrap_or(0xFFFD);
            out.push(char::from_u32(code).filter(|c| *c != '\0').unwrap_or('\u{FFFD}'));
        }
    }
    out
}

/// `%23` is `#`; `None` for a malformed escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// 16 hex digits of the 64-bit FNV-1a hash: names files by their content, so
/// that they can be cached for good.
pub(crate) fn short_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_svg_with_css_escapes_and_percent_escapes() {
        let css = r#"a{background:url("data:image/svg+xml;charset=utf-8,<svg fill=\"%23fff\"/>") 50%}"#;
        let (out, images) = extract_data_images(css, "/docs/", "icon");
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].bytes, br##"<svg fill="#fff"/>"##);
        assert_eq!(images[0].content_type, "image/svg+xml");
        assert_eq!(out, format!(r#"a{{background:url("/docs/{}") 50%}}"#, images[0].file));
        assert!(images[0].file.starts_with("icon-") && images[0].file.ends_with(".svg"));
    }

    #[test]
    fn unquoted_and_single_quoted_base64() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG fake");
        let svg = base64::engine::general_purpose::STANDARD.encode(b"<svg/>");
        let text = format!("x{{b:url(data:image/png;base64,{png})}} `y{{c:url('data:image/svg+xml;base64,{svg}')}}`");
        let (out, images) = extract_data_images(&text, "/r/", "i");
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].bytes, b"\x89PNG fake");
        assert_eq!(images[0].content_type, "image/png");
        assert_eq!(images[1].bytes, b"<svg/>");
        assert!(!out.contains("data:"), "{out}");
        assert!(
            out.starts_with("x{b:url(\"/r/i-") && out.ends_with(".svg\")}`"),
            "{out}"
        );
    }

    #[test]
    fn the_same_image_twice_is_one_file() {
        let css = r#"a{b:url("data:image/svg+xml,<svg/>")}c{d:url("data:image/svg+xml,<svg/>")}"#;
        let (out, images) = extract_data_images(css, "/", "i");
        assert_eq!(images.len(), 1);
        assert_eq!(out.matches(&images[0].file).count(), 2);
    }

    #[test]
    fn other_urls_and_other_data_stay() {
        let text =
            r#"a{b:url(x.png)} url(e,t) c{src:url("data:font/woff;base64,AAAA")} url("data:image/png;base64,!!")"#;
        let (out, images) = extract_data_images(text, "/", "i");
        assert!(images.is_empty());
        assert_eq!(out, text);
    }

    #[test]
    fn unterminated_url_stays() {
        for text in [
            "url(\"data:image/svg+xml,<svg/>",
            "url(data:image/svg+xml,<svg/>",
            "url(",
        ] {
            let (out, images) = extract_data_images(text, "/", "i");
            assert!(images.is_empty());
            assert_eq!(out, text);
        }
    }

    #[test]
    fn css_escapes() {
        assert_eq!(css_unescape(r#"a\"b\\c\26 d\41x"#), "a\"b\\c&dAx");
    }

    #[test]
    fn hash_is_fnv1a() {
        assert_eq!(short_hash(b""), "cbf29ce484222325");
        assert_eq!(short_hash(b"a"), "af63dc4c8601ec8c");
    }
}
