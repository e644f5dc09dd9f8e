//! A Server-Sent Events reader for provider streams: bytes in as they
//! arrive (a line or a UTF-8 character may be split between reads), whole
//! events out. `event:` and `data:` fields (several `data:` lines joined
//! with `\n`), one optional space after the colon dropped, comments
//! (`:`) and other fields ignored, `\r\n`, `\r`-less and `\n` line ends.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field (empty when the event had none: a "message").
    pub event: String,
    pub data: String,
}

/// Longest line kept: a provider that sends more without a line end is
/// broken (the rest of the line is dropped).
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct SseReader {
    line: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events `bytes` completes.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &byte in bytes {
            if byte == b'\n' {
                let line = std::mem::take(&mut self.line);
                let line = String::from_utf8_lossy(&line);
                let line = line.strip_suffix('\r').unwrap_or(&line);
                if let Some(event) = self.line_done(line) {
                    out.push(event);
                }
            } else if self.line.len() < MAX_LINE {
                self.line.push(byte);
            }
        }
        out
    }

    /// The last event, when the stream ended without its blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let line = String::from_utf8_lossy(&line).into_owned();
            if let Some(event) = self.line_done(line.trim_end_matches('\r')) {
                return Some(event);
            }
        }
        self.dispatch()
    }

    fn line_done(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        if self.data.is_empty() {
            self.event.clear();
            return None;
        }
        let event = SseEvent {
            event: std::mem::take(&mut self.event),
            data: std::mem::take(&mut self.data).join("\n"),
        };
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reads_make_whole_events() {
        let mut reader = SseReader::new();
        let text = "event: message_start\r\ndata: {\"a\":1}\r\n\r\n: ping\n\ndata: one\ndata:two\n\ndata: é\n\n";
        let bytes = text.as_bytes();
        let mut events = Vec::new();
        for chunk in bytes.chunks(3) {
            events.extend(reader.push(chunk));
        }
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "message_start".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "one\ntwo".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "é".into()
                },
            ]
        );
        assert_eq!(reader.finish(), None);
        assert_eq!(reader.push(b"data: [DONE]"), vec![]);
        assert_eq!(
            reader.finish(),
            Some(SseEvent {
                event: String::new(),
                data: "[DONE]".into()
            })
        );
    }
}
