//! Text bounds for messages that quote outside input.

/// The longest error message a report carries: a driver may quote a whole
/// multi-megabyte migration back, and a terminal or a log line is no place
/// for it (nor for what the file holds).
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// `text` cut to at most `max` characters, saying how much was left out.
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!(
            "{}… ({} more bytes not shown)",
            &text[..cut],
            text.len() - cut
        ),
    }
}

/// At most 40 characters of what a file gave, with control characters
/// escaped: enough to find it, never a screenful.
pub fn excerpt(field: &str) -> String {
    let mut shown: String = field
        .chars()
        .take(40)
        .flat_map(char::escape_debug)
        .collect();
    if field.chars().nth(40).is_some() {
        shown.push('…');
    }
    shown
}
