//! Bar charts drawn on the server: a table of label, bar and figure per row,
//! each bar a small SVG (presentation attributes only, nothing the
//! Content-Security-Policy `default-src 'self'` refuses; hidden from screen
//! readers, which read the figures). No chart library, no script.

/// One bar: a label and its value.
pub struct Bar {
    pub label: String,
    pub value: u64,
}

impl Bar {
    pub fn new(label: &str, value: u64) -> Bar {
        Bar {
            label: label.chars().take(60).collect(),
            value,
        }
    }
}

/// A horizontal bar chart, laid out for the template.
pub struct BarChart {
    pub title: String,
    pub bars: Vec<PlacedBar>,
}

/// A bar scaled to the largest of its chart.
pub struct PlacedBar {
    pub label: String,
    pub value: u64,
    /// Width in viewBox units, 0-100 (at least 1 for a non-zero value, so
    /// it shows).
    pub width: u32,
}
/// At most this many bars: the rest are summed into "others".
const MAX_BARS: usize = 12;

impl BarChart {
    pub fn new(title: &str, mut bars: Vec<Bar>) -> BarChart {
        if bars.len() > MAX_BARS {
            let rest: u64 = bars.drain(MAX_BARS - 1..).map(|b| b.value).sum();
            bars.push(Bar::new("others", rest));
        }
        let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
        let placed = bars
            .into_iter()
            .map(|bar| {
                let width = (bar.value * 100).div_ceil(max) as u32;
                PlacedBar {
                    width: if bar.value > 0 { width.clamp(1, 100) } else { 0 },
                    label: bar.label,
                    value: bar.value,
                }
            })
            .collect();
        BarChart {
            title: title.to_owned(),
            bars: placed,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bars.iter().all(|b| b.value == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_long_lists_are_summed() {
        let chart = BarChart::new("t", vec![Bar::new("a", 10), Bar::new("b", 5), Bar::new("c", 0)]);
        let widths: Vec<u32> = chart.bars.iter().map(|b| b.width).collect();
        assert_eq!(widths, [100, 50, 0]);
        let many = BarChart::new("t", (0..20).map(|i| Bar::new(&i.to_string(), 1)).collect());
        assert_eq!(many.bars.len(), MAX_BARS);
        assert_eq!(many.bars.last().map(|b| b.value), Some(9));
        assert!(BarChart::new("t", vec![]).is_empty());
    }
}
