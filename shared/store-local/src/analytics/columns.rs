//! CUR column names, as AWS writes them, mapped to the canonical columns the
//! local engine keeps (see docs/finops-cur.md for the table).
//!
//! Every header is first brought to Athena's snake case: the legacy CSV
//! header `lineItem/UsageStartDate` becomes `line_item_usage_start_date`
//! (an underscore before every capital, as AWS's Athena integration names
//! the columns: `reservation/ReservationARN` is `reservation_reservation_a_r_n`),
//! so legacy CSV, legacy Athena-style snake case and CUR 2.0 (Data Exports,
//! already snake case) headers are looked up in one table.

use std::collections::BTreeMap;

/// Athena's snake-case name of a CUR header. Legacy `category/Name` headers
/// are converted; a legacy tag header `resourceTags/user:<key>` keeps its
/// key as written (`resource_tags_user_<key>`); snake-case headers pass.
pub fn snake_name(header: &str) -> String {
    let header = header.trim().trim_start_matches('\u{feff}');
    let Some((category, name)) = header.split_once('/') else {
        return header.to_ascii_lowercase();
    };
    let category = camel_to_snake(category);
    if category == "resource_tags" {
        // `resourceTags/user:team` → `resource_tags_user_team`.
        return match name.split_once(':') {
            Some((kind, key)) => format!("resource_tags_{}_{key}", kind.to_ascii_lowercase()),
            None => format!("resource_tags_{name}"),
        };
    }
    format!("{category}_{}", camel_to_snake(name))
}

fn camel_to_snake(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, ch) in text.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else if ch == ':' || ch == '-' || ch == ' ' {
            out.push('_');
        } else {
            out.push(ch);
        }
    }
    out
}

/// Where each canonical value is in one file's header row.
#[derive(Debug, Default, Clone)]
pub struct Layout {
    pub usage_start: Option<usize>,
    pub product_code: Option<usize>,
    pub product_name: Option<usize>,
    pub account_id: Option<usize>,
    pub region: Option<usize>,
    pub usage_type: Option<usize>,
    pub line_item_type: Option<usize>,
    pub unit: Option<usize>,
    pub currency: Option<usize>,
    pub unblended: Option<usize>,
    pub net_unblended: Option<usize>,
    pub usage_amount: Option<usize>,
    pub sp_effective_cost: Option<usize>,
    pub sp_total_commitment: Option<usize>,
    pub sp_used_commitment: Option<usize>,
    pub ri_effective_cost: Option<usize>,
    pub ri_unused_upfront: Option<usize>,
    pub ri_unused_recurring: Option<usize>,
    pub ri_arn: Option<usize>,
    /// Legacy tag columns: (position, key without `user:`/`user_`).
    pub tag_columns: Vec<(usize, String)>,
    /// CUR 2.0's `resource_tags` map column (JSON text in CSV).
    pub tags_map: Option<usize>,
    /// CUR 2.0's `product` map column (JSON text in CSV).
    pub product_map: Option<usize>,
}

impl Layout {
    /// The layout of a header row; `None` when it is not a CUR header (no
    /// usage start date or no unblended cost).
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Layout> {
        let mut layout = Layout::default();
        let mut region_fallback = None;
        for (index, header) in headers.into_iter().enumerate() {
            let name = snake_name(header);
            let slot = match name.as_str() {
                "line_item_usage_start_date" => &mut layout.usage_start,
                "line_item_product_code" => &mut layout.product_code,
                "product_product_name" => &mut layout.product_name,
                "line_item_usage_account_id" => &mut layout.account_id,
                "product_region_code" => &mut layout.region,
                "product_region" => &mut region_fallback,
                "line_item_usage_type" => &mut layout.usage_type,
                "line_item_line_item_type" => &mut layout.line_item_type,
                "pricing_unit" => &mut layout.unit,
                "line_item_currency_code" => &mut layout.currency,
                "line_item_unblended_cost" => &mut layout.unblended,
                "line_item_net_unblended_cost" => &mut layout.net_unblended,
                "line_item_usage_amount" => &mut layout.usage_amount,
                "savings_plan_savings_plan_effective_cost" => &mut layout.sp_effective_cost,
                "savings_plan_total_commitment_to_date" => &mut layout.sp_total_commitment,
                "savings_plan_used_commitment" => &mut layout.sp_used_commitment,
                "reservation_effective_cost" => &mut layout.ri_effective_cost,
                "reservation_unused_amortized_upfront_fee_for_billing_period" => &mut layout.ri_unused_upfront,
                "reservation_unused_recurring_fee" => &mut layout.ri_unused_recurring,
                "reservation_reservation_a_r_n" | "reservation_reservation_arn" => &mut layout.ri_arn,
                "resource_tags" => &mut layout.tags_map,
                "product" => &mut layout.product_map,
                other => {
                    if let Some(key) = other.strip_prefix("resource_tags_user_")
                        && !key.is_empty()
                    {
                        layout.tag_columns.push((index, key.to_owned()));
                    }
                    continue;
                }
            };
            if slot.is_none() {
                *slot = Some(index);
            }
        }
        if layout.region.is_none() {
            layout.region = region_fallback;
        }
        layout.tag_columns.sort_by(|a, b| a.1.cmp(&b.1));
        (layout.usage_start.is_some() && layout.unblended.is_some()).then_some(layout)
    }
}

/// A cost or amount field: empty or unparsable is 0.
pub fn number(field: &str) -> f64 {
    let field = field.trim();
    if field.is_empty() {
        return 0.0;
    }
    field.parse().unwrap_or(0.0)
}

/// The amortised cost of one line item, as AWS's CUR query library computes
/// it: Savings Plans and reservations spread over the usage they cover.
pub struct AmortizedInputs<'a> {
    pub line_item_type: &'a str,
    pub unblended: f64,
    pub sp_effective_cost: f64,
    pub sp_total_commitment: f64,
    pub sp_used_commitment: f64,
    pub ri_effective_cost: f64,
    pub ri_unused_upfront: f64,
    pub ri_unused_recurring: f64,
    pub has_reservation_arn: bool,
}

pub fn amortized(inputs: &AmortizedInputs) -> f64 {
    match inputs.line_item_type {
        "SavingsPlanCoveredUsage" => inputs.sp_effective_cost,
        "SavingsPlanRecurringFee" => inputs.sp_total_commitment - inputs.sp_used_commitment,
        "SavingsPlanNegation" | "SavingsPlanUpfrontFee" => 0.0,
        "DiscountedUsage" => inputs.ri_effective_cost,
        "RIFee" => inputs.ri_unused_upfront + inputs.ri_unused_recurring,
        "Fee" if inputs.has_reservation_arn => 0.0,
        _ => inputs.unblended,
    }
}

/// The user tags of one row as the port's JSON object text: keys without
/// their `user:`/`user_` prefix, sorted, empty values dropped.
pub fn tags_json(tags: &BTreeMap<String, String>) -> String {
    if tags.is_empty() {
        return "{}".into();
    }
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".into())
}

/// The user tags of a CUR 2.0 `resource_tags` map written as JSON text.
pub fn tags_from_map(text: &str, into: &mut BTreeMap<String, String>) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        for (key, value) in map {
            let Some(key) = key.strip_prefix("user_").or_else(|| key.strip_prefix("user:")) else {
                continue;
            };
            if let serde_json::Value::String(value) = value
                && !value.is_empty()
                && !key.is_empty()
            {
                into.insert(key.to_owned(), value);
            }
        }
    }
}

/// One key of a CUR 2.0 `product` map written as JSON text.
pub fn map_value(text: &str, key: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => map.get(key).and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_headers_become_athena_snake_case() {
        assert_eq!(snake_name("lineItem/UsageStartDate"), "line_item_usage_start_date");
        assert_eq!(snake_name("identity/LineItemId"), "identity_line_item_id");
        assert_eq!(snake_name("product/ProductName"), "product_product_name");
        assert_eq!(snake_name("product/regionCode"), "product_region_code");
        assert_eq!(
            snake_name("reservation/ReservationARN"),
            "reservation_reservation_a_r_n"
        );
        assert_eq!(snake_name("resourceTags/user:team"), "resource_tags_user_team");
        assert_eq!(
            snake_name("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"),
            "reservation_unused_amortized_upfront_fee_for_billing_period"
        );
        assert_eq!(snake_name("line_item_usage_start_date"), "line_item_usage_start_date");
    }

    #[test]
    fn cur2_maps_give_user_tags_and_product_name() {
        let mut tags = BTreeMap::new();
        tags_from_map(r#"{"user_team":"core","user_env":"","aws_createdBy":"x"}"#, &mut tags);
        assert_eq!(tags_json(&tags), r#"{"team":"core"}"#);
        assert_eq!(
            map_value(r#"{"product_name":"Amazon S3"}"#, "product_name").as_deref(),
            Some("Amazon S3")
        );
    }
}
