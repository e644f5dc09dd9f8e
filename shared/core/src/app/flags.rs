//! Feature flags (admins): list, create, update, delete, and what a flag
//! says for a user. Each change is audited by `crate::flags`.

use super::App;
use crate::error::{DomainError, DomainResult};
use crate::flags::{self, FeatureFlag, FlagCheck, FlagList, FlagPatch, NewFlag};
use crate::identity::Principal;

impl App {
    pub async fn feature_flags(&self, caller: &Principal) -> DomainResult<FlagList> {
        flags::list(self.store(), caller).await
    }

    pub async fn create_feature_flag(&self, caller: &Principal, new: NewFlag) -> DomainResult<FeatureFlag> {
        flags::create(self.store(), caller, new).await
    }

    pub async fn update_feature_flag(
        &self,
        caller: &Principal,
        id: &str,
        patch: FlagPatch,
    ) -> DomainResult<FeatureFlag> {
        flags::update(self.store(), caller, id, patch).await
    }

    pub async fn delete_feature_flag(&self, caller: &Principal, id: &str) -> DomainResult<()> {
        flags::delete(self.store(), caller, id).await
    }

    /// `GET /api/v1/admin/feature-flags/{flag_key}/check[?user_id=]`:
    /// `user_id` as the client sent it (a non-number is a 422 naming it).
    pub async fn check_feature_flag(
        &self,
        caller: &Principal,
        key: &str,
        user_id: Option<&str>,
    ) -> DomainResult<FlagCheck> {
        let user_id = user_id
            .map(|text| {
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| DomainError::validation("user_id", "must be a user id (a whole number)"))
            })
            .transpose()?;
        flags::check(self.store(), caller, key, user_id).await
    }
}
