//! The finops route group: each environment's cost source and anomaly
//! settings, and the FinOps answers read from the aggregates the
//! `cur_cost_sync` job keeps (`docs/finops.md`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::finops::anomalies::{AnomalyStatus, CostAnomaly};
use quper_core::finops::costs::{CostParams, CostsAnswer, MoverParams, Summary, TopMovers};
use quper_core::finops::settings::{FinopsSettingsInput, FinopsSettingsView};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::doc;

routes! {
    "/api/v1/finops/settings" => {
        get(get_settings, doc("The environment's cost source and anomaly settings")),
        put(put_settings, doc("Set the cost source (an Athena table or a local folder) and the anomaly settings; the first save sets FinOps up")),
    },
    "/api/v1/finops/costs" => {
        get(costs, doc("Cost and usage by day or month, grouped by up to two dimensions, from the synced CUR aggregates")),
    },
    "/api/v1/finops/summary" => {
        get(summary, doc("Month to date against the same days of the previous month, and the month's forecast")),
    },
    "/api/v1/finops/top-movers" => {
        get(top_movers, doc("Services or accounts whose cost moved most against the period before")),
    },
    "/api/v1/finops/anomalies" => {
        get(anomalies, doc("Cost anomalies the anomaly scan found, newest first")),
    },
}

async fn get_settings(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<FinopsSettingsView>> {
    Ok(Json(app.finops_settings(&caller).await?))
}

async fn put_settings(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(input): ApiJson<FinopsSettingsInput>,
) -> ApiResult<Json<FinopsSettingsView>> {
    Ok(Json(app.save_finops_settings(&caller, input).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct CostQueryParams {
    /// First day (ISO date), inclusive.
    start: Option<String>,
    /// Last day (ISO date), exclusive, as Cost Explorer; at most 13 months after `start`.
    end: Option<String>,
    /// `daily` (default) or `monthly`.
    granularity: Option<String>,
    /// Up to two of `service`, `account`, `region`, `usage_type`, `tag:<key>`, comma-separated.
    group_by: Option<String>,
    /// `unblended` (default), `amortized`, `net_unblended` or `usage_quantity`.
    metric: Option<String>,
    /// Only these product codes (comma-separated).
    #[serde(rename = "filter[service]")]
    filter_service: Option<String>,
    /// Only these accounts (comma-separated).
    #[serde(rename = "filter[account]")]
    filter_account: Option<String>,
    /// Only these regions (comma-separated).
    #[serde(rename = "filter[region]")]
    filter_region: Option<String>,
    /// Only these usage types (comma-separated).
    #[serde(rename = "filter[usage_type]")]
    filter_usage_type: Option<String>,
    /// `filter[tag:<key>]=<values>` (comma-separated; an empty value matches untagged rows).
    #[serde(flatten)]
    other: BTreeMap<String, String>,
}

async fn costs(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<CostQueryParams>,
) -> ApiResult<Json<CostsAnswer>> {
    let mut filters = Vec::new();
    for (name, value) in [
        ("service", params.filter_service),
        ("account", params.filter_account),
        ("region", params.filter_region),
        ("usage_type", params.filter_usage_type),
    ] {
        if let Some(value) = value {
            filters.push((name.to_owned(), value));
        }
    }
    for (name, value) in params.other {
        match name.strip_prefix("filter[").and_then(|rest| rest.strip_suffix(']')) {
            Some(dimension) => filters.push((dimension.to_owned(), value)),
            None => {
                let shown: String = name.chars().take(40).collect();
                return Err(ApiError::validation(shown, "unknown parameter"));
            }
        }
    }
    let params = CostParams {
        start: params.start,
        end: params.end,
        granularity: params.granularity,
        group_by: params.group_by,
        metric: params.metric,
        filters,
    };
    Ok(Json(app.finops_costs(&caller, &params).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SummaryParams {
    /// `unblended` (default), `amortized`, `net_unblended` or `usage_quantity`.
    metric: Option<String>,
}

async fn summary(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> ApiResult<Json<Summary>> {
    Ok(Json(app.finops_summary(&caller, params.metric.as_deref()).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct MoverQueryParams {
    /// `service` (default) or `account`.
    dimension: Option<String>,
    /// The current period's first day (ISO date); with `end`. Default: the
    /// 7 days through the last complete day of data.
    start: Option<String>,
    /// The current period's end (exclusive); at most 93 days after `start`.
    end: Option<String>,
    /// How many movers (1-100, default 10).
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
    /// `unblended` (default), `amortized`, `net_unblended` or `usage_quantity`.
    metric: Option<String>,
}

async fn top_movers(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<MoverQueryParams>,
) -> ApiResult<Json<TopMovers>> {
    let params = MoverParams {
        dimension: params.dimension,
        start: params.start,
        end: params.end,
        limit: params.limit,
        metric: params.metric,
    };
    Ok(Json(app.finops_top_movers(&caller, &params).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AnomalyParams {
    /// `open` or `resolved` (default: both).
    status: Option<String>,
    /// At most this many (1-500, default 100).
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct AnomalyList {
    items: Vec<CostAnomaly>,
}

async fn anomalies(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<AnomalyParams>,
) -> ApiResult<Json<AnomalyList>> {
    let status = match params.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("open") => Some(AnomalyStatus::Open),
        Some("resolved") => Some(AnomalyStatus::Resolved),
        Some(_) => return Err(ApiError::validation("status", "must be open or resolved")),
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("limit", "must be 1 to 500"));
    }
    let items = app.finops_anomalies(&caller, status, limit).await?;
    Ok(Json(AnomalyList { items }))
}
