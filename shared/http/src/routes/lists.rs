//! Query parameters of list routes, in the two styles the seeds document:
//! PagerPal's `page`/`page_size` and OmniStack's `skip`/`limit`. Both accept a
//! `cursor` returned as `next_cursor` by the previous page.

use quper_core::store::{ListPage, PageRequest, SkipLimitPage, decode_offset_cursor, paginate, skip_limit};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct PageParams {
    #[schemars(range(min = 1))]
    pub page: Option<u64>,
    /// At most 200 are returned, whatever is asked.
    #[schemars(range(min = 1))]
    pub page_size: Option<u64>,
    pub cursor: Option<String>,
}

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 200;

fn cursor_offset(cursor: Option<&str>) -> ApiResult<Option<u64>> {
    cursor
        .map(decode_offset_cursor)
        .transpose()
        .map_err(|message| ApiError::validation("cursor", message))
}

impl PageParams {
    /// One page of `all`; `page_size` defaults to 50 and is capped at 200.
    pub fn apply<T>(&self, all: Vec<T>) -> ApiResult<ListPage<T>> {
        if self.page == Some(0) {
            return Err(ApiError::validation("page", "must be 1 or more"));
        }
        if self.page_size == Some(0) {
            return Err(ApiError::validation("page_size", "must be 1 or more"));
        }
        let request = PageRequest {
            page: self.page.unwrap_or(1),
            page_size: self.page_size.unwrap_or(DEFAULT_PAGE_SIZE).min(MAX_PAGE_SIZE),
        };
        Ok(paginate(all, request, cursor_offset(self.cursor.as_deref())?))
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct SkipLimitParams {
    pub skip: Option<u64>,
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

impl SkipLimitParams {
    /// One window of `all`; `limit` defaults to `default` and must be 1-100.
    pub fn apply<T>(&self, all: Vec<T>, default: u64) -> ApiResult<SkipLimitPage<T>> {
        let limit = self.limit.unwrap_or(default);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::validation("limit", "must be between 1 and 100"));
        }
        let skip = match cursor_offset(self.cursor.as_deref())? {
            Some(offset) => offset,
            None => self.skip.unwrap_or(0),
        };
        Ok(skip_limit(all, skip, limit))
    }
}
